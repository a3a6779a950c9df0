#include "COpenSSL.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

static void set_error(char *error, size_t length, const char *format, const char *detail) {
    if (error == NULL || length == 0) return;
    snprintf(error, length, format, detail);
}

// The reason of the most recent OpenSSL error ("no such file", "wrong version number"),
// and the queue cleared so the next call starts clean.
static const char *last_reason(void) {
    unsigned long code = ERR_peek_last_error();
    const char *reason = code ? ERR_reason_error_string(code) : NULL;
    ERR_clear_error();
    return reason ? reason : "unknown error";
}

static const unsigned char h2_protocol[] = {2, 'h', '2'};

// ALPN on the server: h2 or nothing (the gRPC spec: a client that does not offer h2
// is refused with no_application_protocol; one that sends no ALPN at all is refused
// the same way, when its ClientHello arrives: see require_alpn).
static int select_h2(SSL *ssl, const unsigned char **out, unsigned char *out_length, const unsigned char *in,
                     unsigned int in_length, void *arg) {
    (void)ssl;
    (void)arg;
    unsigned char *selected = NULL;
    if (SSL_select_next_proto(&selected, out_length, h2_protocol, sizeof h2_protocol, in, in_length)
            != OPENSSL_NPN_NEGOTIATED) {
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
}

// A ClientHello without ALPN: without this, OpenSSL never calls select_h2 and the
// handshake would complete, leaving the refusal to a close the client cannot explain.
static int require_alpn(SSL *ssl, int *alert, void *arg) {
    (void)arg;
    const unsigned char *extension = NULL;
    size_t length = 0;
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &extension, &length) != 1) {
        *alert = SSL_AD_NO_APPLICATION_PROTOCOL;
        return SSL_CLIENT_HELLO_ERROR;
    }
    return SSL_CLIENT_HELLO_SUCCESS;
}

// OpenSSL's socket BIO writes with write(2), not send(2) with MSG_NOSIGNAL as the
// cleartext transport does: a peer that resets the connection would raise SIGPIPE and
// kill the process (it did, in the gateway). So, once, SIGPIPE is ignored when it still
// has its default action (a handler someone installed is left alone); the write then
// fails with EPIPE, which the connection reports.
static int note_certificate_request(SSL *ssl, X509 **certificate, EVP_PKEY **key);

static pthread_once_t sigpipe_once = PTHREAD_ONCE_INIT;

static void ignore_sigpipe(void) {
    struct sigaction current;
    if (sigaction(SIGPIPE, NULL, &current) == 0 && current.sa_handler == SIG_DFL) {
        struct sigaction ignore;
        memset(&ignore, 0, sizeof ignore);
        ignore.sa_handler = SIG_IGN;
        sigemptyset(&ignore.sa_mask);
        sigaction(SIGPIPE, &ignore, NULL);
    }
}

static SSL_CTX *new_context(const SSL_METHOD *method, char *error, size_t length) {
    pthread_once(&sigpipe_once, ignore_sigpipe);
    SSL_CTX *context = SSL_CTX_new(method);
    if (context == NULL) {
        set_error(error, length, "cannot create a TLS context: %s", last_reason());
        return NULL;
    }
    SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
    // Writes may take part of a buffer and be retried from a moved one (the output
    // buffer grows between attempts); TLS 1.2 renegotiation is off.
    SSL_CTX_set_mode(context, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_options(context, SSL_OP_NO_RENEGOTIATION);
    return context;
}

static int use_certificate(SSL_CTX *context, const char *chain, const char *key, char *error, size_t length) {
    if (SSL_CTX_use_certificate_chain_file(context, chain) != 1) {
        set_error(error, length, "cannot load the certificate chain %s", chain);
        size_t used = strlen(error);
        set_error(error + used, length - used, ": %s", last_reason());
        return 0;
    }
    if (SSL_CTX_use_PrivateKey_file(context, key, SSL_FILETYPE_PEM) != 1) {
        set_error(error, length, "cannot load the private key %s", key);
        size_t used = strlen(error);
        set_error(error + used, length - used, ": %s", last_reason());
        return 0;
    }
    if (SSL_CTX_check_private_key(context) != 1) {
        set_error(error, length, "the private key %s does not match the certificate", key);
        ERR_clear_error();
        return 0;
    }
    return 1;
}

outliers_tls_context *outliers_tls_server_context(const char *certificate_chain, const char *private_key,
                                                  const char *client_ca, int trust_own_certificate, char *error,
                                                  size_t error_length) {
    SSL_CTX *context = new_context(TLS_server_method(), error, error_length);
    if (context == NULL) return NULL;
    if (!use_certificate(context, certificate_chain, private_key, error, error_length)) {
        SSL_CTX_free(context);
        return NULL;
    }
    SSL_CTX_set_alpn_select_cb(context, select_h2, NULL);
    SSL_CTX_set_client_hello_cb(context, require_alpn, NULL);
    if (client_ca != NULL) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(client_ca);
        if (names == NULL || SSL_CTX_load_verify_locations(context, client_ca, NULL) != 1) {
            if (names) sk_X509_NAME_pop_free(names, X509_NAME_free);
            set_error(error, error_length, "cannot load the client CA %s", client_ca);
            size_t used = strlen(error);
            set_error(error + used, error_length - used, ": %s", last_reason());
            SSL_CTX_free(context);
            return NULL;
        }
        SSL_CTX_set_client_CA_list(context, names);
        if (trust_own_certificate) {
            // The server's own certificate is a trust anchor of its own (partial chain):
            // `outliers serve`'s gateway presents it when calling its backend.
            if (SSL_CTX_load_verify_locations(context, certificate_chain, NULL) != 1) {
                set_error(error, error_length, "cannot trust %s", certificate_chain);
                size_t used = strlen(error);
                set_error(error + used, error_length - used, ": %s", last_reason());
                SSL_CTX_free(context);
                return NULL;
            }
            X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(context), X509_V_FLAG_PARTIAL_CHAIN);
        }
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    return context;
}

outliers_tls_context *outliers_tls_client_context(const char *ca, const char *certificate_chain,
                                                  const char *private_key, int pin, char *error, size_t error_length) {
    SSL_CTX *context = new_context(TLS_client_method(), error, error_length);
    if (context == NULL) return NULL;
    int loaded = ca != NULL ? SSL_CTX_load_verify_locations(context, ca, NULL) : SSL_CTX_set_default_verify_paths(context);
    if (loaded != 1) {
        set_error(error, error_length, "cannot load the CA %s", ca ? ca : "(the system's roots)");
        size_t used = strlen(error);
        set_error(error + used, error_length - used, ": %s", last_reason());
        SSL_CTX_free(context);
        return NULL;
    }
    SSL_CTX_set_verify(context, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_client_cert_cb(context, note_certificate_request);
    if (pin) X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(context), X509_V_FLAG_PARTIAL_CHAIN);
    if (certificate_chain != NULL && !use_certificate(context, certificate_chain, private_key, error, error_length)) {
        SSL_CTX_free(context);
        return NULL;
    }
    if (SSL_CTX_set_alpn_protos(context, h2_protocol, sizeof h2_protocol) != 0) {
        set_error(error, error_length, "cannot set ALPN: %s", last_reason());
        SSL_CTX_free(context);
        return NULL;
    }
    return context;
}

void outliers_tls_context_free(outliers_tls_context *context) { SSL_CTX_free(context); }

outliers_tls_session *outliers_tls_session_new(outliers_tls_context *context, int fd, int is_server,
                                               const char *server_name, char *error, size_t error_length) {
    SSL *ssl = SSL_new(context);
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
        set_error(error, error_length, "cannot create a TLS session: %s", last_reason());
        SSL_free(ssl);
        return NULL;
    }
    if (is_server) {
        SSL_set_accept_state(ssl);
        return ssl;
    }
    SSL_set_connect_state(ssl);
    if (server_name != NULL && server_name[0] != '\0') {
        unsigned char address[16];
        int is_address = inet_pton(AF_INET, server_name, address) == 1 || inet_pton(AF_INET6, server_name, address) == 1;
        int named = is_address ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), server_name)
                               // SNI is for names only (RFC 6066 §3).
                               : SSL_set1_host(ssl, server_name) == 1 && SSL_set_tlsext_host_name(ssl, server_name) == 1;
        if (named != 1) {
            set_error(error, error_length, "cannot verify the server name %s", server_name);
            ERR_clear_error();
            SSL_free(ssl);
            return NULL;
        }
    }
    return ssl;
}

void outliers_tls_session_free(outliers_tls_session *session) {
    if (session == NULL) return;
    if (SSL_is_init_finished(session)) {
        (void)SSL_shutdown(session);  // close_notify, best effort: the socket closes next
    }
    ERR_clear_error();
    SSL_free(session);
}

// What a failed call means, in words.
// TLS 1.3 ends the client's handshake before the server checks its certificate: a
// server that wanted one then just hangs up (or resets). Say what it wanted.
static char certificate_requested;  // its address marks a session (SSL_set_app_data)

// Called on a client without a certificate when the server asks for one.
static int note_certificate_request(SSL *ssl, X509 **certificate, EVP_PKEY **key) {
    (void)certificate;
    (void)key;
    SSL_set_app_data(ssl, &certificate_requested);
    return 0;  // none: the handshake goes on without one
}

static void hint_client_certificate(SSL *ssl, char *error, size_t length) {
    if (SSL_is_server(ssl) || SSL_get_app_data(ssl) != &certificate_requested) return;
    size_t used = strlen(error);
    set_error(error + used, length - used, "%s",
              "; the server asked for a client certificate and none was presented (give a certificate and key)");
}

static int failure(SSL *ssl, int result, int in_handshake, char *error, size_t length) {
    int code = SSL_get_error(ssl, result);
    switch (code) {
    case SSL_ERROR_WANT_READ:
        return OUTLIERS_TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return OUTLIERS_TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        set_error(error, length, "%s", "the peer closed the TLS connection");
        return OUTLIERS_TLS_FAILED;
    case SSL_ERROR_SYSCALL: {
        int saved = errno;
        ERR_clear_error();
        if (saved == 0 || saved == EAGAIN) {
            set_error(error, length, "%s",
                      in_handshake ? "the peer closed the connection during the TLS handshake" : "the peer closed the connection");
        } else {
            set_error(error, length, "%s", strerror(saved));
        }
        hint_client_certificate(ssl, error, length);
        return OUTLIERS_TLS_FAILED;
    }
    default: {
        long verified = SSL_get_verify_result(ssl);
        unsigned long last = ERR_peek_last_error();
        if (ERR_GET_REASON(last) == SSL_R_CERTIFICATE_VERIFY_FAILED && verified != X509_V_OK) {
            set_error(error, length, "certificate verify failed: %s", X509_verify_cert_error_string(verified));
            ERR_clear_error();
        } else if (SSL_is_server(ssl) && (ERR_GET_REASON(last) == SSL_R_CALLBACK_FAILED
                                          || ERR_GET_REASON(last) == SSL_R_NO_APPLICATION_PROTOCOL)) {
            // Our only ClientHello callback is require_alpn; select_h2 refuses the rest.
            ERR_clear_error();
            set_error(error, length, "%s", "the client did not offer HTTP/2 (ALPN h2), which gRPC over TLS requires");
        } else if (ERR_GET_REASON(last) == SSL_R_WRONG_VERSION_NUMBER || ERR_GET_REASON(last) == SSL_R_HTTP_REQUEST
                   || ERR_GET_REASON(last) == SSL_R_PACKET_LENGTH_TOO_LONG || ERR_GET_REASON(last) == SSL_R_RECORD_LENGTH_MISMATCH) {
            set_error(error, length, "the peer does not speak TLS (a cleartext port?): %s", last_reason());
        } else {
            set_error(error, length, "%s", last_reason());
        }
        hint_client_certificate(ssl, error, length);
        return OUTLIERS_TLS_FAILED;
    }
    }
}

int outliers_tls_handshake(outliers_tls_session *session, char *error, size_t error_length) {
    ERR_clear_error();
    int result = SSL_do_handshake(session);
    if (result != 1) return failure(session, result, 1, error, error_length);
    const unsigned char *protocol = NULL;
    unsigned int protocol_length = 0;
    SSL_get0_alpn_selected(session, &protocol, &protocol_length);
    if (protocol_length != 2 || memcmp(protocol, "h2", 2) != 0) {
        set_error(error, error_length, "%s", "the peer did not negotiate HTTP/2 (ALPN h2), which gRPC over TLS requires");
        return OUTLIERS_TLS_FAILED;
    }
    return OUTLIERS_TLS_DONE;
}

ssize_t outliers_tls_read(outliers_tls_session *session, void *buffer, size_t length, char *error, size_t error_length) {
    ERR_clear_error();
    size_t read = 0;
    int result = SSL_read_ex(session, buffer, length, &read);
    if (result == 1) return (ssize_t)read;
    if (SSL_get_error(session, result) == SSL_ERROR_ZERO_RETURN) return 0;
    return failure(session, result, 0, error, error_length);
}

ssize_t outliers_tls_write(outliers_tls_session *session, const void *bytes, size_t length, char *error, size_t error_length) {
    ERR_clear_error();
    size_t written = 0;
    int result = SSL_write_ex(session, bytes, length, &written);
    if (result == 1) return (ssize_t)written;
    return failure(session, result, 0, error, error_length);
}

const char *outliers_tls_version(const outliers_tls_session *session) { return SSL_get_version(session); }

const char *outliers_tls_cipher(const outliers_tls_session *session) {
    return SSL_CIPHER_get_name(SSL_get_current_cipher(session));
}
