package live

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/centrifugal/centrifuge"
)

// connState is what the server knows of one connection: its grant, which
// a refresh replaces, and the channels it holds by subscription token.
type connState struct {
	mu       sync.Mutex
	grant    *grant
	bySubTok map[string]bool
}

func (c *connState) current() *grant {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.grant
}

type connStateKey struct{}

// handle wires the node's connection handlers.
func (s *Sink) handle(node *centrifuge.Node) {
	node.OnConnecting(func(ctx context.Context, e centrifuge.ConnectEvent) (centrifuge.ConnectReply, error) {
		return s.connecting(ctx, node, e)
	})
	node.OnConnect(s.connect)
	node.OnTransportWrite(func(_ *centrifuge.Client, e centrifuge.TransportWriteEvent) bool {
		s.st.sentMessages.Add(1)
		s.st.sentBytes.Add(uint64(len(e.Data)))
		return true
	})
}

// connecting authenticates a connection from its token.
func (s *Sink) connecting(ctx context.Context, node *centrifuge.Node, e centrifuge.ConnectEvent) (centrifuge.ConnectReply, error) {
	if node.Hub().NumClients() >= s.cfg.MaxConnections {
		s.st.refuse("connection_limit")
		return centrifuge.ConnectReply{}, centrifuge.DisconnectConnectionLimit
	}
	var g *grant
	switch {
	case e.Token == "" && s.anon == nil:
		s.st.refuse("no_token")
		s.log.Debug("live: connection without a token refused", "transport", e.Transport.Name())
		return centrifuge.ConnectReply{}, centrifuge.DisconnectInvalidToken
	case e.Token == "":
		g = s.anon
	default:
		var err error
		g, err = s.auth.connection(e.Token)
		if err != nil {
			return centrifuge.ConnectReply{}, s.refuseToken(err, "connection")
		}
	}
	st := &connState{grant: g, bySubTok: make(map[string]bool)}
	return centrifuge.ConnectReply{
		Context:           context.WithValue(ctx, connStateKey{}, st),
		Credentials:       &centrifuge.Credentials{UserID: g.user, ExpireAt: g.expireAt},
		ClientSideRefresh: true,
	}, nil
}

// refuseToken counts a refused token and turns the error into the
// protocol's: an expired token may be replaced (the SDKs ask for a new
// one); an invalid connection token ends the connection for good, an
// invalid subscription token refuses that subscription only.
func (s *Sink) refuseToken(err error, what string) error {
	if errors.Is(err, errTokenExpired) {
		s.st.refuse("token_expired")
		s.log.Debug("live: expired token", "token", what)
		return centrifuge.ErrorTokenExpired
	}
	s.st.refuse("invalid_token")
	s.log.Info("live: token refused", "token", what, "error", err)
	if what == "subscription" {
		return centrifuge.ErrorPermissionDenied
	}
	return centrifuge.DisconnectInvalidToken
}

// connect sets a new connection's handlers.
func (s *Sink) connect(c *centrifuge.Client) {
	st, _ := c.Context().Value(connStateKey{}).(*connState)
	if st == nil {
		c.Disconnect(centrifuge.DisconnectServerError)
		return
	}
	c.OnSubscribe(func(e centrifuge.SubscribeEvent, cb centrifuge.SubscribeCallback) {
		s.subscribe(c, st, e, cb)
	})
	c.OnSubRefresh(func(e centrifuge.SubRefreshEvent, cb centrifuge.SubRefreshCallback) {
		exp, err := s.auth.subscription(e.Token, c.UserID(), e.Channel)
		switch {
		case errors.Is(err, errTokenExpired):
			s.st.refuse("token_expired")
			cb(centrifuge.SubRefreshReply{Expired: true}, nil)
		case err != nil:
			cb(centrifuge.SubRefreshReply{}, s.refuseToken(err, "subscription"))
		default:
			cb(centrifuge.SubRefreshReply{ExpireAt: exp}, nil)
		}
	})
	c.OnRefresh(func(e centrifuge.RefreshEvent, cb centrifuge.RefreshCallback) {
		g, err := s.auth.connection(e.Token)
		switch {
		case errors.Is(err, errTokenExpired):
			s.st.refuse("token_expired")
			cb(centrifuge.RefreshReply{Expired: true}, nil)
			return
		case err != nil:
			cb(centrifuge.RefreshReply{}, s.refuseToken(err, "connection"))
			return
		case g.user != c.UserID():
			s.st.refuse("invalid_token")
			cb(centrifuge.RefreshReply{}, centrifuge.DisconnectInvalidToken)
			return
		}
		st.mu.Lock()
		st.grant = g
		var gone []string
		for _, ch := range c.Channels() {
			if !st.bySubTok[ch] && !g.allows(ch) {
				gone = append(gone, ch)
			}
		}
		st.mu.Unlock()
		// A new token may allow fewer channels than the old one.
		for _, ch := range gone {
			c.Unsubscribe(ch)
		}
		cb(centrifuge.RefreshReply{ExpireAt: g.expireAt}, nil)
	})
	c.OnUnsubscribe(func(e centrifuge.UnsubscribeEvent) {
		st.mu.Lock()
		delete(st.bySubTok, e.Channel)
		st.mu.Unlock()
	})
	c.OnHistory(func(e centrifuge.HistoryEvent, cb centrifuge.HistoryCallback) {
		st.mu.Lock()
		ok := st.bySubTok[e.Channel] || st.grant.allows(e.Channel)
		st.mu.Unlock()
		if !ok {
			s.st.refuse("permission_denied")
			cb(centrifuge.HistoryReply{}, centrifuge.ErrorPermissionDenied)
			return
		}
		cb(centrifuge.HistoryReply{}, nil)
	})
	c.OnRPC(func(e centrifuge.RPCEvent, cb centrifuge.RPCCallback) {
		if e.Method != "channels" {
			cb(centrifuge.RPCReply{}, centrifuge.ErrorMethodNotFound)
			return
		}
		data, err := json.Marshal(s.chans.list(st.current(), s.now(), s.cfg.HistoryTTL, maxListed))
		if err != nil {
			cb(centrifuge.RPCReply{}, centrifuge.ErrorInternal)
			return
		}
		cb(centrifuge.RPCReply{Data: data}, nil)
	})
	c.OnDisconnect(func(e centrifuge.DisconnectEvent) {
		s.st.disconnected(e.Disconnect)
	})
}

// subscribe allows a subscription by the connection's grant or by a
// subscription token, with recovery: from the channel's history for most
// channels, its latest point for latest_only ones.
func (s *Sink) subscribe(c *centrifuge.Client, st *connState, e centrifuge.SubscribeEvent, cb centrifuge.SubscribeCallback) {
	opts := centrifuge.SubscribeOptions{EnableRecovery: true, EnablePositioning: true}
	if s.chans.latest(e.Channel) {
		opts.RecoveryMode = centrifuge.RecoveryModeCache
		opts.AutoCacheRecover = true
	}
	if e.Token != "" {
		exp, err := s.auth.subscription(e.Token, c.UserID(), e.Channel)
		if err != nil {
			cb(centrifuge.SubscribeReply{}, s.refuseToken(err, "subscription"))
			return
		}
		st.mu.Lock()
		st.bySubTok[e.Channel] = true
		st.mu.Unlock()
		opts.ExpireAt = exp
		cb(centrifuge.SubscribeReply{Options: opts, ClientSideRefresh: true}, nil)
		return
	}
	if !st.current().allows(e.Channel) {
		s.st.refuse("permission_denied")
		s.log.Debug("live: subscription refused", "channel", e.Channel, "user", c.UserID())
		cb(centrifuge.SubscribeReply{}, centrifuge.ErrorPermissionDenied)
		return
	}
	cb(centrifuge.SubscribeReply{Options: opts}, nil)
}

// mux routes the live endpoint: the client protocol's transports and
// the page. The transports are the running node's (see serve); until a
// node runs (Redis has not answered yet) they answer 503, and the SDKs
// try again with backoff.
func (s *Sink) mux() http.Handler {
	m := http.NewServeMux()
	m.Handle("/connection/websocket", s.transport(func(h *transports) http.Handler { return h.websocket }))
	m.Handle("/connection/http_stream", s.transport(func(h *transports) http.Handler { return h.httpStream }))
	m.Handle("/connection/sse", s.transport(func(h *transports) http.Handler { return h.sse }))
	m.Handle("/emulation", s.transport(func(h *transports) http.Handler { return h.emulation }))
	m.Handle("/", pageHandler())
	return m
}

// transports are the client protocol's handlers of one node.
type transports struct {
	websocket, httpStream, sse, emulation http.Handler
}

func (s *Sink) transportsOf(node *centrifuge.Node) *transports {
	ping := centrifuge.PingPongConfig{PingInterval: s.cfg.PingInterval, PongTimeout: s.cfg.PongTimeout}
	return &transports{
		websocket: centrifuge.NewWebsocketHandler(node, centrifuge.WebsocketConfig{
			CheckOrigin:    s.originAllowed,
			WriteTimeout:   s.cfg.WriteTimeout,
			PingPongConfig: ping,
		}),
		// The HTTP-based transports, for clients behind proxies that do
		// not pass WebSocket: a stream down, commands up through /emulation.
		httpStream: s.cors(centrifuge.NewHTTPStreamHandler(node, centrifuge.HTTPStreamConfig{PingPongConfig: ping})),
		sse:        s.cors(centrifuge.NewSSEHandler(node, centrifuge.SSEConfig{PingPongConfig: ping})),
		emulation:  s.cors(centrifuge.NewEmulationHandler(node, centrifuge.EmulationConfig{})),
	}
}

// notServing is what a client connecting before the node runs gets.
const notServing = "live sink: not serving yet: waiting for Redis; try again"

// transport serves with the running node's handler that pick chooses.
func (s *Sink) transport(pick func(*transports) http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := s.transports.Load()
		if h == nil {
			w.Header().Set("Retry-After", "1")
			http.Error(w, notServing, http.StatusServiceUnavailable)
			return
		}
		pick(h).ServeHTTP(w, r)
	})
}

// originAllowed lets a request in unless a browser sent it from a page
// of another origin that allowed_origins does not list. Requests without
// Origin come from programs, which the token guards.
func (s *Sink) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host) {
		return true
	}
	if slices.Contains(s.cfg.AllowedOrigins, "*") || slices.ContainsFunc(s.cfg.AllowedOrigins, func(o string) bool {
		return strings.EqualFold(strings.TrimSuffix(o, "/"), origin)
	}) {
		return true
	}
	s.st.refuse("origin")
	s.log.Info("live: request from a page of another origin refused; list it in allowed_origins to allow it", "origin", origin)
	return false
}

// cors applies the origin check to the HTTP-based transports and answers
// their preflight requests.
func (s *Sink) cors(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.originAllowed(r) {
			http.Error(w, "origin not allowed", http.StatusForbidden)
			return
		}
		if o := r.Header.Get("Origin"); o != "" {
			w.Header().Set("Access-Control-Allow-Origin", o)
			w.Header().Set("Access-Control-Allow-Headers", "Content-Type")
			w.Header().Set("Vary", "Origin")
		}
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.ServeHTTP(w, r)
	})
}
