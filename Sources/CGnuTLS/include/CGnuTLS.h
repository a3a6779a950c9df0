#ifndef OUTLIERS_CGNUTLS_H
#define OUTLIERS_CGNUTLS_H
#include <stddef.h>

// HTTPS for the gateway: libmicrohttpd runs GnuTLS itself; this holds the certificate
// generations the gateway's connections use, so that a SIGHUP can load new files
// without restarting the daemon. Each connection is switched to the current generation
// when libmicrohttpd announces it (MHD_CONNECTION_NOTIFY_STARTED, before its
// handshake). GnuTLS keeps a pointer to the credentials for the session's life, so a
// generation is freed only after the daemon has stopped. Errors are written into
// `error` (`error_length` bytes, NUL-terminated) as one sentence.

struct MHD_Connection;
typedef struct outliers_https_credentials outliers_https_credentials;

// Whether this libmicrohttpd was built with TLS (MHD_FEATURE_TLS).
int outliers_https_supported(void);

// The certificate chain and key (PEM files; the key must match the certificate) and,
// with `client_ca`, the CAs a client certificate must be signed by. NULL on failure.
outliers_https_credentials *outliers_https_credentials_new(const char *certificate_chain, const char *private_key,
                                                           const char *client_ca, char *error, size_t error_length);
void outliers_https_credentials_free(outliers_https_credentials *credentials);

// Puts `credentials` on the connection's TLS session; with a client CA, requires a
// client certificate and verifies it during the handshake (a missing, unknown or
// expired one fails the handshake). 0 on success, -1 when the connection is not TLS.
int outliers_https_prepare_connection(struct MHD_Connection *connection, outliers_https_credentials *credentials);

// The negotiated protocol version and cipher suite of a TLS connection ("TLS1.3",
// "TLS_AES_128_GCM_SHA256"), or NULL.
const char *outliers_https_connection_version(struct MHD_Connection *connection);
#endif
