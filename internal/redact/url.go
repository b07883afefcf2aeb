package redact

import (
	"net/url"
	"regexp"
	"strings"
)

// Mark replaces whatever is redacted.
const Mark = "REDACTED"

// secretExact are parameter and key names that are secret on their own
// but too short or common to look for inside longer names ("key" is in
// "keepalive"). Names are compared after normalize.
var secretExact = map[string]bool{
	"key": true, "sig": true, "pass": true, "pwd": true, "pw": true,
	"p":    true, // InfluxDB 1.x's ?u=USER&p=PASSWORD
	"code": true, // OAuth authorization codes
}

// secretWords make any name that contains one secret: client_secret,
// refresh_token, X-Amz-Signature, x-api-key, private_key, ...
var secretWords = []string{
	"token", "secret", "password", "passwd", "apikey", "signature",
	"credential", "privatekey", "accesskey", "sessionkey", "auth", "cookie",
}

// normalize lower-cases a name and drops the separators people put
// between its words, so that api_key, api-key and apiKey compare equal.
func normalize(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch r {
		case '_', '-', '.', ' ':
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// SecretKey reports whether a query parameter or config key of this name
// holds a secret: apikey, api_key, key, token, access_token, secret,
// password, passwd, signature, sig, auth, credential and the like. It errs
// on the side of masking: hiding an innocent value costs nothing.
func SecretKey(name string) bool {
	n := normalize(name)
	if secretExact[n] {
		return true
	}
	for _, w := range secretWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// URL returns raw with its secrets masked: a password in the user-info
// becomes Mark (a user name alone, which is how some services carry a
// token, becomes Mark too), and so does the value of every query or
// fragment parameter whose name SecretKey matches. Scheme, host, port,
// path and the other parameters stay, so the result still says where the
// URL points. A string that does not parse as a URL is replaced whole.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.Opaque != "" {
		// mailto:, urn: and the like: nothing structured to keep.
		if u.Scheme != "" {
			return u.Scheme + ":" + Mark
		}
		return Mark
	}
	changed := false
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), Mark)
		} else {
			u.User = url.User(Mark)
		}
		changed = true
	}
	if q := params(u.RawQuery); q != u.RawQuery {
		u.RawQuery, changed = q, true
	}
	if u.Fragment != "" {
		if f := params(u.EscapedFragment()); f != u.EscapedFragment() {
			u.Fragment, u.RawFragment = f, f
			if uf, err := url.PathUnescape(f); err == nil {
				u.Fragment = uf
			}
			changed = true
		}
	}
	if !changed {
		// As written: re-encoding could change text that holds no secret.
		return raw
	}
	return u.String()
}

// URLSecrets returns what URL masks in raw: the user-info password (or a
// lone user name) and the values of secret query parameters, for a
// Scrubber to mask wherever else they turn up.
func URLSecrets(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil {
		return nil
	}
	var out []string
	if u.User != nil {
		if p, ok := u.User.Password(); ok {
			out = append(out, p)
		} else if n := u.User.Username(); n != "" {
			out = append(out, n)
		}
	}
	for k, vs := range u.Query() {
		if SecretKey(k) {
			for _, v := range vs {
				if v != "" {
					out = append(out, v)
				}
			}
		}
	}
	return out
}

// params masks the values of secret parameters in a query string, keeping
// the order and encoding of everything else.
func params(q string) string {
	if q == "" || !strings.Contains(q, "=") {
		return q
	}
	parts := strings.Split(q, "&")
	changed := false
	for i, p := range parts {
		k, v, ok := strings.Cut(p, "=")
		if !ok || v == "" {
			continue
		}
		name, err := url.QueryUnescape(k)
		if err != nil {
			name = k
		}
		if SecretKey(name) {
			parts[i] = k + "=" + Mark
			changed = true
		}
	}
	if !changed {
		return q
	}
	return strings.Join(parts, "&")
}

// urlInText finds what looks like a URL in free text: a scheme, "://",
// then everything up to white space or a quote.
var urlInText = regexp.MustCompile("[A-Za-z][A-Za-z0-9+.-]{0,15}://[^\\s\"'<>`]+")

// Text returns s with every URL in it passed through URL, for messages
// written by code that does not know what it quotes (a library's error
// quoting the request URL, say). Punctuation that ends a sentence is not
// taken as part of the URL.
func Text(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return urlInText.ReplaceAllStringFunc(s, func(m string) string {
		trail := ""
		for len(m) > 0 && strings.ContainsRune(".,;:)]}", rune(m[len(m)-1])) {
			trail = m[len(m)-1:] + trail
			m = m[:len(m)-1]
		}
		return URL(m) + trail
	})
}
