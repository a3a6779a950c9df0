#ifndef OUTLIERS_COPENSSL_H
#define OUTLIERS_COPENSSL_H
#include <stddef.h>
#include <sys/types.h>

// TLS for the gRPC transport, over OpenSSL 3. Everything here takes and returns plain
// pointers and ints: OpenSSL's own API leans on macros (SSL_CTX_set_min_proto_version,
// SSL_set_tlsext_host_name, SSL_CTX_set_mode) and C callbacks (ALPN selection) that
// Swift cannot call or write without capturing. Errors are written into `error`
// (`error_length` bytes, NUL-terminated) as one sentence a user can act on.

typedef struct ssl_ctx_st outliers_tls_context;
typedef struct ssl_st outliers_tls_session;

// A server context: the certificate chain and key (PEM files), TLS 1.2 and 1.3 only,
// ALPN offering h2 alone (a client offering other protocols only is refused with
// no_application_protocol). With `client_ca`, a client certificate signed by it is
// required; with `trust_own_certificate` too, a client presenting the server's own
// certificate is accepted as well. NULL on failure.
outliers_tls_context *outliers_tls_server_context(const char *certificate_chain, const char *private_key,
                                                  const char *client_ca, int trust_own_certificate, char *error,
                                                  size_t error_length);

// A client context: peers verified against `ca` (PEM file) or, when NULL, the system's
// roots; with `certificate_chain` and `private_key`, that client certificate is
// presented. TLS 1.2 and 1.3, ALPN h2. With `pin`, every certificate in `ca` is a trust
// anchor itself (X509_V_FLAG_PARTIAL_CHAIN): a server's own chain file pins it. NULL on
// failure.
outliers_tls_context *outliers_tls_client_context(const char *ca, const char *certificate_chain,
                                                  const char *private_key, int pin, char *error, size_t error_length);

void outliers_tls_context_free(outliers_tls_context *context);

// A session over the connected non-blocking socket `fd`. A client session verifies the
// server's certificate for `server_name` (a DNS name, sent as SNI too, or an IP address).
outliers_tls_session *outliers_tls_session_new(outliers_tls_context *context, int fd, int is_server,
                                               const char *server_name, char *error, size_t error_length);
// Sends close_notify if the socket takes it now, then frees the session (not the fd).
void outliers_tls_session_free(outliers_tls_session *session);

enum {
    OUTLIERS_TLS_DONE = 0,
    OUTLIERS_TLS_WANT_READ = -1,
    OUTLIERS_TLS_WANT_WRITE = -2,
    OUTLIERS_TLS_FAILED = -3,
};

// One step of the handshake: DONE (h2 negotiated), WANT_READ, WANT_WRITE or FAILED
// (with the reason: an unknown CA, an expired certificate, a name mismatch, no h2,
// a peer that does not speak TLS).
int outliers_tls_handshake(outliers_tls_session *session, char *error, size_t error_length);

// Decrypted bytes read (0: the peer closed), or WANT_READ, WANT_WRITE, FAILED.
ssize_t outliers_tls_read(outliers_tls_session *session, void *buffer, size_t length, char *error, size_t error_length);
// Bytes taken (at least one record's worth, partial writes enabled), or WANT_READ,
// WANT_WRITE, FAILED.
ssize_t outliers_tls_write(outliers_tls_session *session, const void *bytes, size_t length, char *error, size_t error_length);

// The negotiated protocol version ("TLSv1.3") and cipher, for logs.
const char *outliers_tls_version(const outliers_tls_session *session);
const char *outliers_tls_cipher(const outliers_tls_session *session);
#endif
