// Package security protects flowscope's listeners: TLS with certificates
// reloaded without a restart (and optional mutual TLS), bearer tokens by
// scope, an HTTP guard against DNS rebinding and cross-site requests, and
// gRPC interceptors that check the same tokens.
//
// # Scopes and tokens
//
// Every request does one of four things (its Scope): nothing sensitive
// (ScopeNone: health probes, the UI's static files), sending telemetry
// (ScopeIngest), reading (ScopeRead: the query API, /metrics) or changing
// state (ScopeWrite: import, reloads, running a synthetic check). The
// operator may configure a token for each of ingest, read and write, from a
// file or a value (LoadTokens); a scope without a token needs none. The
// write token is the operator's and also grants read; the ingest and read
// tokens grant only themselves. Tokens are sent as "Authorization: Bearer
// <token>" (HTTP) or "authorization" metadata (gRPC). Only their SHA-256
// digests are kept in memory and compared in constant time; no error or log
// line contains a token. Tokens.Reload rereads the token files (on SIGHUP).
//
// # The HTTP guard
//
// Guard wraps a listener's handler and checks, in order, before the
// handler runs or the body is read:
//
//  1. the Host header (against DNS rebinding): 421 unless it names this
//     server (see HTTPPolicy);
//  2. CORS: allowed origins get CORS headers and their preflights a 204;
//  3. cross-site requests (CSRF) for methods other than GET, HEAD and
//     OPTIONS: 403 when the browser says the request is cross-site
//     (Sec-Fetch-Site, Origin) and the origin is not allowed; 415 for the
//     content types a browser sends cross-site without a preflight
//     (text/plain, application/x-www-form-urlencoded); 403 for a browser's
//     multipart/form-data that is not from the server's own pages;
//  4. the bearer token of the request's scope: 401 with WWW-Authenticate.
//
// Every response carries X-Content-Type-Options: nosniff.
//
// # TLS
//
// TLS serves a certificate and key from PEM files, and with a client CA
// bundle requires and verifies client certificates (mutual TLS). At most
// once a second a handshake stats the files and rereads them when they
// changed (modification time, size or file identity, so that the
// symlink swaps of Kubernetes secret volumes are seen); TLS.Reload rereads
// them at once. A reload that fails keeps the previous certificate and CA.
package security
