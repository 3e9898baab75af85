/*
 * mcp_transport: how the MCP client reaches one server, below the JSON-RPC
 * messages. The server, call and group code (mcp_server.c, mcp_call.c,
 * mcp_group.c) speaks in whole messages through this interface and never
 * touches a pipe, a process or a socket; each way of reaching a server is
 * one implementation: stdio (mcp_stdio.h: a child process, one message
 * per line on its pipes) and Streamable HTTP (mcp_http.h: each message a
 * POST answered with JSON or an SSE stream, a session id from initialize).
 * The older HTTP+SSE transport (messages POSTed, answers on one SSE
 * stream) is mcp_http.h too, connecting asynchronously.
 *
 * A transport belongs to one server for the server's whole life and is
 * reused across restarts: start opens a new connection (spawns a new
 * process, begins a new HTTP session), close ends it, and start may follow
 * again. Between them:
 *
 * - send queues one message as mcp_frame encodes it: compact JSON ending
 *   in a newline, which is stdio's framing and harmless in an HTTP body.
 *   It may be called right after start even when the transport connects
 *   asynchronously: it then keeps the message until it can deliver it.
 *   It fails (-1) only when the message can never go out on this
 *   connection (closed, or over the transport's cap); it reports nothing
 *   about the peer's answer.
 * - on_frame delivers one message from the peer, whatever carried it: a
 *   line of a child's stdout, one HTTP answer's JSON body, or one event of
 *   one of several SSE streams open at once. Messages the transport could
 *   not carry whole (over its cap) come as on_toobig with the request id
 *   found in what it saw, so the call waiting for it can fail.
 * - on_eof says that no further message will arrive on this connection
 *   (the peer is going away); on_closed follows, once the transport knows
 *   how it ended ("exited (status 1)"), and is the last callback of the
 *   connection. A connection that fails before it carried anything (a
 *   refused HTTP connection) may report on_closed alone. Callbacks run
 *   from the event loop, never from within start, send or close.
 * - close ends the connection at once (a child still running is killed);
 *   nothing of that connection calls back afterwards, even when close is
 *   called from inside one of its callbacks.
 *
 * Things only some transports have stay behind the interface: a session id
 * is the HTTP transport's to keep and send; a process id only appears in
 * the peer text of log lines. stop_all ends the connections of several
 * transports of the same kind at shutdown in one bounded wait.
 */
#ifndef CHATPLANE_MCP_TRANSPORT_H
#define CHATPLANE_MCP_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

typedef struct mcp_transport mcp_transport;

typedef struct mcp_transport_callbacks {
    /* One message: data (NUL-terminated) is valid during the call only. */
    void (*on_frame)(void *ud, const char *data, size_t len);
    /* A message of len bytes, more than the max the transport takes; id is
     * the integer id seen in it, or -1. */
    void (*on_toobig)(void *ud, size_t len, size_t max, int64_t id);
    /* No more messages will come on this connection. */
    void (*on_eof)(void *ud);
    /* The connection has ended; how says how ("exited (status 1)"). */
    void (*on_closed)(void *ud, const char *how);
} mcp_transport_callbacks;

typedef struct mcp_transport_ops {
    /* Opens a new connection. Returns 0, or -1 with err saying why and
     * nothing open; a failure found later arrives as on_closed. */
    int (*start)(mcp_transport *t, char *err, size_t errlen);
    /* Queues one message of len bytes (see above). Returns 0 or -1. */
    int (*send)(mcp_transport *t, const char *msg, size_t len);
    /* Ends the connection at once; harmless when none is open. */
    void (*close)(mcp_transport *t);
    /* Optional: the protocol version initialize agreed on, for transports
     * that must repeat it on every request (HTTP). */
    void (*negotiated)(mcp_transport *t, const char *version);
    /* Shutdown: ends the connections of ts[0..n-1], all of this kind, within
     * one bounded wait. Blocks. */
    void (*stop_all)(mcp_transport **ts, size_t n);
    /* Ends a connection left open, then frees the transport. */
    void (*free)(mcp_transport *t);
} mcp_transport_ops;

/* Every transport starts with this. */
struct mcp_transport {
    const mcp_transport_ops *ops;
    const char *name; /* the server's name, for log lines; owned by the server */
    /* The current peer as key=value for log lines ("pid=4242"); "" when
     * no connection is open. */
    char peer[64];
    mcp_transport_callbacks cb;
    void *ud;
};

static inline int mcp_transport_start(mcp_transport *t, char *err, size_t errlen)
{
    return t->ops->start(t, err, errlen);
}

static inline int mcp_transport_send(mcp_transport *t, const char *msg, size_t len)
{
    return t->ops->send(t, msg, len);
}

static inline void mcp_transport_close(mcp_transport *t)
{
    t->ops->close(t);
}

static inline void mcp_transport_free(mcp_transport *t)
{
    if (t) t->ops->free(t);
}

#endif
