#include "CGnuTLS.h"

#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>

struct outliers_https_credentials {
    gnutls_certificate_credentials_t certificate;
    int require_client_certificate;
};

int outliers_https_supported(void) { return MHD_is_feature_supported(MHD_FEATURE_TLS) == MHD_YES; }

static void say(char *error, size_t length, const char *what, const char *file, int code) {
    if (error && length) snprintf(error, length, "%s %s: %s", what, file, gnutls_strerror(code));
}

outliers_https_credentials *outliers_https_credentials_new(const char *certificate_chain, const char *private_key,
                                                           const char *client_ca, char *error, size_t error_length) {
    outliers_https_credentials *credentials = calloc(1, sizeof *credentials);
    if (!credentials) {
        snprintf(error, error_length, "out of memory");
        return NULL;
    }
    int rc = gnutls_certificate_allocate_credentials(&credentials->certificate);
    if (rc < 0) {
        say(error, error_length, "cannot allocate credentials for", certificate_chain, rc);
        free(credentials);
        return NULL;
    }
    rc = gnutls_certificate_set_x509_key_file(credentials->certificate, certificate_chain, private_key,
                                              GNUTLS_X509_FMT_PEM);
    if (rc < 0) {
        if (rc == GNUTLS_E_CERTIFICATE_KEY_MISMATCH)
            snprintf(error, error_length, "the key %s does not match the certificate %s", private_key,
                     certificate_chain);
        else
            snprintf(error, error_length, "cannot load the certificate %s with the key %s: %s", certificate_chain,
                     private_key, gnutls_strerror(rc));
        outliers_https_credentials_free(credentials);
        return NULL;
    }
    if (client_ca) {
        rc = gnutls_certificate_set_x509_trust_file(credentials->certificate, client_ca, GNUTLS_X509_FMT_PEM);
        if (rc <= 0) {
            if (rc == 0)
                snprintf(error, error_length, "no certificate in the client CA file %s", client_ca);
            else
                say(error, error_length, "cannot load the client CA file", client_ca, rc);
            outliers_https_credentials_free(credentials);
            return NULL;
        }
        credentials->require_client_certificate = 1;
    }
    return credentials;
}

void outliers_https_credentials_free(outliers_https_credentials *credentials) {
    if (!credentials) return;
    if (credentials->certificate) gnutls_certificate_free_credentials(credentials->certificate);
    free(credentials);
}

static gnutls_session_t session_of(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    return info ? (gnutls_session_t)info->tls_session : NULL;
}

int outliers_https_prepare_connection(struct MHD_Connection *connection, outliers_https_credentials *credentials) {
    gnutls_session_t session = session_of(connection);
    if (!session || !credentials) return -1;
    if (gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, credentials->certificate) < 0) return -1;
    if (credentials->require_client_certificate) {
        gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUIRE);
        // No host name: a client certificate names a client, not the server's host.
        gnutls_session_set_verify_cert(session, NULL, 0);
    }
    return 0;
}

const char *outliers_https_connection_version(struct MHD_Connection *connection) {
    gnutls_session_t session = session_of(connection);
    return session ? gnutls_protocol_get_name(gnutls_protocol_get_version(session)) : NULL;
}
