/*
 * server: `chatplane serve`. Starts the runtime (store, writer, read pool,
 * model, tools, engine), the SSE hub and the HTTP server on one event loop,
 * and runs until SIGTERM or SIGINT, then shuts down gracefully: stops
 * accepting, stops active runs with `interrupted`, commits the last events,
 * ends the open streams and returns within a few seconds.
 */
#ifndef CHATPLANE_SERVER_H
#define CHATPLANE_SERVER_H

#include "app/config.h"

/* Runs the server; returns the process exit code (0 after a clean
 * shutdown, 1 when it could not start). */
int server_run(const config *cfg);

/* Registers every family of /metrics in the order they are shown; server_run
 * does it first thing. Registering again changes nothing. */
void server_metrics_register(void);

/*
 * Splits "HOST:PORT" (or "[V6]:PORT") into host and port. Returns 0, or -1
 * with err naming the problem.
 */
int server_parse_listen(const char *listen, char *host, size_t hostlen, int *port, char *err,
                        size_t errlen);

/* True when every address host resolves to is a loopback address. */
int server_is_loopback(const char *host);

#endif
