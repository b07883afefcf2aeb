package jsonws

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/clienttls"
	"github.com/sluicehq/sluice/internal/redact"
	"github.com/sluicehq/sluice/plugins/sdk"
)

// Defaults for keys left out of the config. README.md documents each key.
const (
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultMaxMessageBytes  = 1 << 20
	DefaultMaxJSONDepth     = 128
	DefaultPingInterval     = 30 * time.Second
	DefaultPongTimeout      = 10 * time.Second
	DefaultExpectTimeout    = 10 * time.Second
	DefaultReconnectInitial = time.Second
	DefaultReconnectMax     = time.Minute
	DefaultReconnectBudget  = 30
	DefaultReconnectWindow  = 10 * time.Minute
	DefaultQueueWait        = time.Second
	// DefaultStaleAfter is how long a feed may go without data (a
	// message a rule matched) before it is reported stale and its
	// connection replaced. A feed quieter than this by nature sets its
	// own stale_after, or an alive rule for the server's heartbeats.
	DefaultStaleAfter = time.Minute
	// maxQueueWait keeps a wait well inside the default ping.timeout:
	// the connection's reader waits with it.
	maxQueueWait = 5 * time.Second
	// maxJSONDepthLimit bounds max_json_depth: gjson's validator
	// recurses once per level, about 128 bytes of stack each, so this
	// many levels take about 1.3 MiB, far from Go's 1 GB stack limit.
	maxJSONDepthLimit = 10000
)

// Config is the feed's `config:` block.
type Config struct {
	URL                  string            `json:"url"`
	Headers              map[string]string `json:"headers"`
	TLS                  TLSConfig         `json:"tls"`
	Proxy                string            `json:"proxy"`
	Compression          bool              `json:"compression"`
	HandshakeTimeout     sdk.Duration      `json:"handshake_timeout"`
	MaxMessageBytes      int64             `json:"max_message_bytes"`
	Decompress           string            `json:"decompress"`
	MaxDecompressedBytes int64             `json:"max_decompressed_bytes"`
	MaxJSONDepth         int               `json:"max_json_depth"`
	OnOpen               []OnOpen          `json:"on_open"`
	Ping                 PingConfig        `json:"ping"`
	Heartbeat            *Heartbeat        `json:"heartbeat"`
	Answer               []Answer          `json:"answer"`
	StaleAfter           *sdk.Duration     `json:"stale_after"`
	QueueWait            *sdk.Duration     `json:"queue_wait"`
	Reconnect            ReconnectConfig   `json:"reconnect"`
	Rules                []Rule            `json:"rules"`
}

// TLSConfig sets up wss:// connections.
type TLSConfig = clienttls.Config

// OnOpen is one message sent after each (re)connect, in order, optionally
// waiting for a reply that satisfies Expect before the next one.
type OnOpen struct {
	Send   json.RawMessage `json:"send"`
	Expect *Expect         `json:"expect"`
}

// Expect waits for Count messages (default 1) satisfying its condition:
// Kraken acknowledges each pair of one subscribe message on its own. A
// message satisfying any Fail condition first ends the feed for good (the
// server refused the login, or one of the pairs).
type Expect struct {
	Condition
	Count   int          `json:"count"`
	Timeout sdk.Duration `json:"timeout"`
	Fail    []Condition  `json:"fail"`
}

// PingConfig is WebSocket-level ping/pong. Interval nil means the default;
// "0s" turns pings off.
type PingConfig struct {
	Interval *sdk.Duration `json:"interval"`
	Timeout  sdk.Duration  `json:"timeout"`
}

// Heartbeat is an application-level message sent every Every. Reply
// recognises the server's answer to it (OKX answers "ping" with the text
// "pong"), which is then counted as a reply rather than mapped; with
// Timeout, no reply that long after a heartbeat replaces the connection.
type Heartbeat struct {
	Every   sdk.Duration    `json:"every"`
	Send    json.RawMessage `json:"send"`
	Reply   *Recognise      `json:"reply"`
	Timeout sdk.Duration    `json:"timeout"`
}

// Recognise picks out a message: a text frame equal to Text, or a JSON
// message satisfying every Match condition. Set exactly one.
type Recognise struct {
	Text  string      `json:"text"`
	Match []Condition `json:"match"`
}

// Answer recognises a server's own ping (a text frame equal to Text, or a
// JSON message satisfying every Match condition) and sends Reply, which
// may take values from the ping: {pong: "${msg:ping}"}. Answered
// messages are not mapped and do not count as data for stale_after (an
// alive rule makes a message count).
type Answer struct {
	Text  string          `json:"text"`
	Match []Condition     `json:"match"`
	Reply json.RawMessage `json:"reply"`
}

// ReconnectConfig paces reconnects: capped exponential backoff with
// jitter, and at most Budget reconnects in any Window (Budget -1: no
// limit). Past the budget Run fails and the agent restarts the plugin with
// its own backoff.
//
// When lists conditions on a message by which the server asks the client
// to reconnect (Bitstamp's {"event":"bts:request_reconnect"} before
// maintenance): a message satisfying all of them ends the connection at
// once, and the source reconnects.
type ReconnectConfig struct {
	Initial sdk.Duration `json:"initial"`
	Max     sdk.Duration `json:"max"`
	Budget  int          `json:"budget"`
	Window  sdk.Duration `json:"window"`
	When    []Condition  `json:"when"`
}

// Decompression modes for binary frames.
const (
	DecompressNone    = "none"
	DecompressGzip    = "gzip"
	DecompressDeflate = "deflate"
	DecompressAuto    = "auto"
)

// settings is a Config checked and compiled: what a connection needs.
type settings struct {
	url              template
	headers          map[string]template
	tls              *tls.Config // nil for ws://
	proxy            *url.URL    // nil: direct; proxyFromEnv: from HTTP(S)_PROXY
	proxyFromEnv     bool
	compression      bool
	handshakeTimeout time.Duration
	maxMessage       int64
	decompress       string
	maxDecompressed  int64
	maxDepth         int // arrays and objects nested deeper: the frame is dropped
	onOpen           []openStep
	pingInterval     time.Duration // 0: no WebSocket pings
	pongTimeout      time.Duration
	heartbeatEvery   time.Duration // 0: no application heartbeat
	heartbeat        message
	heartbeatReply   *recognise    // nil: replies are not told apart
	heartbeatTimeout time.Duration // 0: a missing reply is not an error
	answers          []answer
	reconnectWhen    []cond        // the server asks us to reconnect
	staleAfter       time.Duration // 0: never stale
	queueWait        time.Duration // how long a point waits for room in the host's queue
	reconnect        ReconnectConfig
	mapper           *Mapper
}

type openStep struct {
	send    message
	expect  *cond // nil: do not wait
	count   int   // how many messages satisfying expect
	fail    []cond
	timeout time.Duration
}

// recognise is a compiled Recognise.
type recognise struct {
	text  string // "" for a JSON message
	match []cond
}

type answer struct {
	recognise
	reply message
}

// parseConfig decodes and checks a feed config, reporting every problem
// at once. Secrets are checked for syntax only; checkSecrets resolves them.
// scrub (which may be nil) learns the secrets the config holds inline and,
// later, every value its templates render.
func parseConfig(req sdk.ConfigureRequest, scrub *redact.Scrubber) (*Config, *settings, error) {
	var cfg Config
	check := req.Check(&cfg)
	s := cfg.compile(scrub, check)
	if err := check.Err(); err != nil {
		return nil, nil, err
	}
	return &cfg, s, nil
}

// compile checks c and compiles what a connection needs, recording every
// problem in check. A key that did not decode is not checked again.
func (c *Config) compile(scrub *redact.Scrubber, check *sdk.ConfigCheck) *settings {
	fail := func(key, format string, args ...any) { check.That(key, false, format, args...) }
	s := &settings{
		compression:      c.Compression,
		handshakeTimeout: orDefault(c.HandshakeTimeout, DefaultHandshakeTimeout),
		maxMessage:       c.MaxMessageBytes,
		decompress:       c.Decompress,
		maxDecompressed:  c.MaxDecompressedBytes,
		pingInterval:     DefaultPingInterval,
		pongTimeout:      orDefault(c.Ping.Timeout, DefaultPongTimeout),
		staleAfter:       DefaultStaleAfter,
		reconnect:        c.Reconnect,
	}

	urlT, err := parseTemplate(c.URL, scrub)
	if err != nil {
		fail("url", "%v", err)
	}
	s.url = urlT
	// References are checked for the URL's shape with a stand-in value.
	u, err := url.Parse(urlT.placeholder())
	scrub.Add(redact.URLSecrets(urlT.placeholder())...)
	switch {
	case c.URL == "":
		fail("url", "is required (ws:// or wss://)")
	case err != nil:
		// The parser's message quotes the URL, and may quote a part of
		// a password (as the port, say): say only what to look at.
		fail("url", "is not a valid URL: a password or key in it must be percent-encoded, or given as ${env:NAME} or ${file:PATH}")
	case u.Scheme != "ws" && u.Scheme != "wss":
		fail("url", "scheme must be ws or wss, not %q", u.Scheme)
	case u.Host == "":
		fail("url", "has no host")
	}

	s.headers = make(map[string]template, len(c.Headers))
	for name, v := range c.Headers {
		key := "headers." + name
		if !validHeaderName(name) {
			fail(key, "is not a valid header name")
			continue
		}
		if reservedHeader(name) {
			fail(key, "is set by the WebSocket handshake itself and cannot be overridden")
			continue
		}
		t, err := parseTemplate(v, scrub)
		if err != nil {
			fail(key, "%v", err)
			continue
		}
		if v := strings.TrimSpace(strings.TrimPrefix(v, "Bearer ")); redact.SecretKey(name) && len(v) >= 8 && !strings.Contains(v, "${") {
			// An inline credential: Authorization, X-API-Key, Cookie
			// (references are learnt when they are rendered).
			scrub.Add(v)
		}
		s.headers[name] = t
	}

	if !c.TLS.IsZero() {
		if err == nil && u.Scheme == "ws" {
			fail("tls", "applies only to wss:// URLs")
		}
		tc, tlsErrs := c.TLS.Load()
		for _, e := range tlsErrs {
			fail(e.Key, "%s", fileErr(e.Err))
		}
		s.tls = tc
	}

	switch p := c.Proxy; {
	case p == "":
	case p == "environment":
		s.proxyFromEnv = true
	default:
		pu, err := url.Parse(p)
		scrub.Add(redact.URLSecrets(p)...)
		if err != nil || pu.Host == "" || (pu.Scheme != "http" && pu.Scheme != "https" && pu.Scheme != "socks5") {
			fail("proxy", `must be "environment" or a http://, https:// or socks5:// URL`)
		} else {
			s.proxy = pu
		}
	}

	if s.handshakeTimeout < 0 {
		fail("handshake_timeout", "must not be negative")
	}
	switch {
	case c.MaxMessageBytes == 0:
		s.maxMessage = DefaultMaxMessageBytes
	case c.MaxMessageBytes < 0:
		fail("max_message_bytes", "must be positive")
	}
	switch c.Decompress {
	case "":
		s.decompress = DecompressAuto
	case DecompressNone, DecompressGzip, DecompressDeflate, DecompressAuto:
	default:
		fail("decompress", "must be none, gzip, deflate or auto, not %q", c.Decompress)
	}
	switch {
	case c.MaxDecompressedBytes == 0:
		// A compressed message may be no larger than a plain one, so
		// that a compression bomb costs no more than a big frame.
		s.maxDecompressed = s.maxMessage
	case c.MaxDecompressedBytes < 0:
		fail("max_decompressed_bytes", "must be positive")
	}
	switch {
	case c.MaxJSONDepth == 0:
		s.maxDepth = DefaultMaxJSONDepth
	case c.MaxJSONDepth < 1 || c.MaxJSONDepth > maxJSONDepthLimit:
		fail("max_json_depth", "must be between 1 and %d, got %d", maxJSONDepthLimit, c.MaxJSONDepth)
	default:
		s.maxDepth = c.MaxJSONDepth
	}

	// Conditions outside the rules, to check the tables they read.
	var conds []keyedCond
	for i, o := range c.OnOpen {
		key := fmt.Sprintf("on_open[%d]", i)
		step := openStep{}
		m, err := parseMessage(o.Send, scrub)
		if err != nil {
			fail(key+".send", "%v", err)
		}
		step.send = m
		if e := o.Expect; e != nil {
			cd, err := compileCond(e.Condition)
			if err != nil {
				fail(key+".expect", "%v", err)
			}
			conds = append(conds, keyedCond{key + ".expect", cd})
			step.expect = &cd
			step.count = e.Count
			switch {
			case e.Count == 0:
				step.count = 1
			case e.Count < 0 || e.Count > maxExpectCount:
				fail(key+".expect.count", "must be between 1 and %d, got %d", maxExpectCount, e.Count)
			}
			for j, f := range e.Fail {
				fc, err := compileCond(f)
				if err != nil {
					fail(fmt.Sprintf("%s.expect.fail[%d]", key, j), "%v", err)
				}
				conds = append(conds, keyedCond{fmt.Sprintf("%s.expect.fail[%d]", key, j), fc})
				step.fail = append(step.fail, fc)
			}
			step.timeout = orDefault(e.Timeout, DefaultExpectTimeout)
			if step.timeout <= 0 {
				fail(key+".expect.timeout", "must be positive")
			}
		}
		s.onOpen = append(s.onOpen, step)
	}

	if c.Ping.Interval != nil {
		s.pingInterval = time.Duration(*c.Ping.Interval)
	}
	if s.pingInterval < 0 {
		fail("ping.interval", "must not be negative (0s turns pings off)")
	}
	if s.pongTimeout <= 0 {
		fail("ping.timeout", "must be positive")
	}

	if h := c.Heartbeat; h != nil {
		s.heartbeatEvery = time.Duration(h.Every)
		if s.heartbeatEvery <= 0 {
			fail("heartbeat.every", "must be positive")
		}
		m, err := parseMessage(h.Send, scrub)
		if err != nil {
			fail("heartbeat.send", "%v", err)
		}
		s.heartbeat = m
		if h.Reply != nil {
			rc, rerrs := compileRecognise("heartbeat.reply", h.Reply.Text, h.Reply.Match)
			for _, e := range rerrs {
				fail(e.Key, "%s", e.Msg)
			}
			for j, cd := range rc.match {
				conds = append(conds, keyedCond{fmt.Sprintf("heartbeat.reply.match[%d]", j), cd})
			}
			s.heartbeatReply = &rc
		}
		s.heartbeatTimeout = time.Duration(h.Timeout)
		switch {
		case s.heartbeatTimeout < 0:
			fail("heartbeat.timeout", "must not be negative")
		case s.heartbeatTimeout > 0 && h.Reply == nil:
			fail("heartbeat.timeout", "needs heartbeat.reply: the timeout is for the server's reply to each heartbeat")
		}
	}

	for i, a := range c.Answer {
		key := fmt.Sprintf("answer[%d]", i)
		rc, rerrs := compileRecognise(key, a.Text, a.Match)
		for _, e := range rerrs {
			fail(e.Key, "%s", e.Msg)
		}
		for j, cd := range rc.match {
			conds = append(conds, keyedCond{fmt.Sprintf("%s.match[%d]", key, j), cd})
		}
		an := answer{recognise: rc}
		m, err := parseMessageRefs(a.Reply, scrub, len(a.Match) > 0)
		if err != nil {
			msg := err.Error()
			if a.Text != "" && strings.Contains(msg, "only answer[].reply") {
				msg = "a text ping is not JSON: only an answer with match can use ${msg:PATH}"
			}
			fail(key+".reply", "%s", msg)
		}
		an.reply = m
		s.answers = append(s.answers, an)
	}

	if c.StaleAfter != nil {
		s.staleAfter = time.Duration(*c.StaleAfter)
	}
	if s.staleAfter < 0 {
		fail("stale_after", "must not be negative (0s turns the check off)")
	}
	s.queueWait = DefaultQueueWait
	if c.QueueWait != nil {
		if d := time.Duration(*c.QueueWait); d < 0 || d > maxQueueWait {
			fail("queue_wait", "must be between 0s and %v, got %v", maxQueueWait, d)
		} else {
			s.queueWait = d
		}
	}

	r := &s.reconnect
	r.Initial = sdk.Duration(orDefault(r.Initial, DefaultReconnectInitial))
	r.Max = sdk.Duration(orDefault(r.Max, DefaultReconnectMax))
	r.Window = sdk.Duration(orDefault(r.Window, DefaultReconnectWindow))
	if r.Budget == 0 {
		r.Budget = DefaultReconnectBudget
	}
	switch {
	case r.Initial <= 0:
		fail("reconnect.initial", "must be positive")
	case r.Max < r.Initial:
		fail("reconnect.max", "must be at least reconnect.initial")
	}
	if r.Window <= 0 {
		fail("reconnect.window", "must be positive")
	}
	if r.Budget < -1 {
		fail("reconnect.budget", "must be positive, or -1 for no limit")
	}
	for j, w := range r.When {
		cd, err := compileCond(w)
		if err != nil {
			fail(fmt.Sprintf("reconnect.when[%d]", j), "%v", err)
		}
		conds = append(conds, keyedCond{fmt.Sprintf("reconnect.when[%d]", j), cd})
		s.reconnectWhen = append(s.reconnectWhen, cd)
	}

	switch {
	case len(c.Rules) == 0:
		fail("rules", "must list at least one rule, or the feed writes nothing")
	case !slices.ContainsFunc(c.Rules, func(r Rule) bool { return !r.Alive }):
		fail("rules", "must list at least one rule that maps points, not only alive rules, or the feed writes nothing")
	}
	m, ruleErrs := NewMapper(c.Rules)
	for _, e := range ruleErrs {
		fail(e.Key, "%s", e.Msg)
	}
	for _, kc := range conds {
		if kc.cond.in != "" && !m.fills(kc.cond.in) {
			fail(kc.key+".in", "no rule remembers into table %q (a rule's remember: [{table: %s, key: PATH, value: PATH}] fills it)", kc.cond.in, kc.cond.in)
		}
	}
	m.maxDepth = s.maxDepth
	s.mapper = m
	return s
}

// maxExpectCount bounds expect.count: one subscribe message acknowledged
// per pair, for a few hundred pairs at most.
const maxExpectCount = 10000

// keyedCond is a condition with its config key.
type keyedCond struct {
	key  string
	cond cond
}

// compileRecognise compiles a text-or-match choice at key.
func compileRecognise(key, text string, match []Condition) (recognise, sdk.ConfigErrors) {
	var errs sdk.ConfigErrors
	rc := recognise{text: text}
	if (text == "") == (len(match) == 0) {
		errs = append(errs, sdk.ConfigError{Key: key, Msg: "set exactly one of text (a plain text message) and match (conditions on a JSON message)"})
	}
	for j, m := range match {
		cd, err := compileCond(m)
		if err != nil {
			errs = append(errs, sdk.ConfigError{Key: fmt.Sprintf("%s.match[%d]", key, j), Msg: err.Error()})
		}
		rc.match = append(rc.match, cd)
	}
	return rc, errs
}

// checkSecrets resolves every ${env:..} and ${file:..} reference once, so
// that a missing variable or unreadable file is a config error rather than
// a failure at the first connect. The values are not kept: each connect
// reads them again, which picks up rotated token files.
func (s *settings) checkSecrets() sdk.ConfigErrors {
	var errs sdk.ConfigErrors
	if _, err := s.url.render(); err != nil {
		errs = append(errs, sdk.ConfigError{Key: "url", Msg: err.Error()})
	}
	for name, t := range s.headers {
		if _, err := t.render(); err != nil {
			errs = append(errs, sdk.ConfigError{Key: "headers." + name, Msg: err.Error()})
		}
	}
	for i, o := range s.onOpen {
		if _, err := o.send.render(); err != nil {
			errs = append(errs, sdk.ConfigError{Key: fmt.Sprintf("on_open[%d].send", i), Msg: err.Error()})
		}
	}
	if s.heartbeatEvery > 0 {
		if _, err := s.heartbeat.render(); err != nil {
			errs = append(errs, sdk.ConfigError{Key: "heartbeat.send", Msg: err.Error()})
		}
	}
	return errs
}

func fileErr(err error) string {
	if pe, ok := err.(*os.PathError); ok {
		return "cannot read " + pe.Path + ": " + pe.Err.Error()
	}
	return err.Error()
}

func orDefault(d sdk.Duration, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return time.Duration(d)
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		// RFC 9110 token characters.
		if r > 0x7e || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}

// reservedHeader reports the headers gorilla/websocket writes itself and
// refuses to duplicate.
func reservedHeader(name string) bool {
	switch strings.ToLower(name) {
	case "upgrade", "connection", "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions":
		return true
	}
	return false
}
