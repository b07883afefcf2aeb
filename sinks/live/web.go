package live

import (
	"embed"
	"io/fs"
	"net/http"
)

// web holds the page the live endpoint serves at /: index.html, and the
// bundle `make web` builds from web/src (the centrifuge client and uPlot,
// at the versions web/package.json pins).
//
//go:embed web/index.html web/dist/app.js web/dist/app.css
var web embed.FS

// pageHandler serves the page. It holds no data and no token: the page
// connects like any client, with a token the user gives it.
func pageHandler() http.Handler {
	sub, _ := fs.Sub(web, "web")
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; base-uri 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		files.ServeHTTP(w, r)
	})
}
