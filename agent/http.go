package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluicehq/sluice/agent/pipeline"
)

// handler serves the agent's HTTP API, behind apiAccess (access.go), on
// http.listen and http.socket:
//
//	GET  /healthz         ok while the process lives
//	GET  /readyz          200 when every feed runs, no sink has failed and (cluster mode) the agent is an active member, else 503 and why
//	GET  /metrics         Prometheus metrics
//	GET  /api/v1/status   JSON snapshot of every feed and sink
//	POST /api/v1/reload   reload the config; JSON result, 422 with the errors if rejected
//	GET  /api/v1/tap      stream a feed's normalized points (?feed=NAME&measurement=M)
func (a *Agent) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", a.serveReady)
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /api/v1/status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, a.Status())
	})
	mux.HandleFunc("POST /api/v1/reload", a.serveReload)
	mux.HandleFunc("GET /api/v1/tap", a.serveTap)
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// Readiness is /readyz's answer.
type Readiness struct {
	Ready   bool     `json:"ready"`
	Reasons []string `json:"reasons,omitempty"`
}

// readiness is ready when every feed runs and none is stale (its plugin
// reports a stream without data: see FeedStatus.Stale), no sink has
// failed, and in cluster mode the agent is an active member of its
// cluster; else the reasons.
func (a *Agent) readiness() Readiness {
	if !a.isReady() {
		return Readiness{Reasons: []string{"starting"}}
	}
	if a.stopping.Load() {
		return Readiness{Reasons: []string{"stopping"}}
	}
	var reasons []string
	st := a.Status()
	for _, f := range st.Feeds {
		if f.State != FeedRunning {
			r := fmt.Sprintf("feed %s is %s", f.Name, f.State)
			if f.LastError != "" {
				r += ": " + f.LastError
			}
			reasons = append(reasons, r)
		} else if len(f.Stale) > 0 {
			reasons = append(reasons, staleReason(f))
		}
	}
	for _, s := range st.Sinks {
		if s.State == pipeline.SinkFailed || s.State == pipeline.SinkStopped {
			r := fmt.Sprintf("sink %s is %s", s.Name, s.State)
			if s.LastError != "" {
				r += ": " + s.LastError
			}
			reasons = append(reasons, r)
		}
	}
	if r := clusterReason(st.Cluster); r != "" {
		reasons = append(reasons, r)
	}
	return Readiness{Ready: len(reasons) == 0, Reasons: reasons}
}

func (a *Agent) serveReady(w http.ResponseWriter, _ *http.Request) {
	r := a.readiness()
	code := http.StatusOK
	if !r.Ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, r)
}

// ReloadResponse is /api/v1/reload's answer.
type ReloadResponse struct {
	OK bool `json:"ok"`
	ReloadResult
	Errors []string `json:"errors,omitempty"`
}

func (a *Agent) serveReload(w http.ResponseWriter, r *http.Request) {
	res, err := a.Reload(r.Context())
	switch {
	case errors.Is(err, ErrStopping):
		writeJSON(w, http.StatusServiceUnavailable, ReloadResponse{Errors: []string{err.Error()}})
	case err != nil:
		writeJSON(w, http.StatusUnprocessableEntity, ReloadResponse{Errors: errorLines(err)})
	default:
		writeJSON(w, http.StatusOK, ReloadResponse{OK: true, ReloadResult: res})
	}
}

// serveTap streams the normalized points of one feed as they reach the
// buffer, one line-protocol line each, flushed per batch. A client that
// reads too slowly loses batches; a comment line says how many points.
// At most http.max_tap_clients streams are served at once.
func (a *Agent) serveTap(w http.ResponseWriter, r *http.Request) {
	feed, measurement := r.URL.Query().Get("feed"), r.URL.Query().Get("measurement")
	if run := a.run.Load(); run == nil || !run.feeds.has(feed) {
		http.Error(w, fmt.Sprintf("no feed %q is running", feed), http.StatusNotFound)
		return
	}
	sub, err := a.tap.subscribe(feed, measurement)
	switch {
	case errors.Is(err, errTapFull):
		w.Header().Set("Retry-After", "10")
		http.Error(w, fmt.Sprintf("the agent already serves %d tap streams, its most (http.max_tap_clients)", a.tap.max), http.StatusServiceUnavailable)
		return
	case err != nil:
		http.Error(w, "the agent is stopping", http.StatusServiceUnavailable)
		return
	}
	defer a.tap.unsubscribe(sub)
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "# tapping feed %s", feed)
	if measurement != "" {
		fmt.Fprintf(w, ", measurement %q", measurement)
	}
	fmt.Fprintln(w)
	if rc.Flush() != nil {
		return
	}
	var chunks [][]byte
	var reported uint64
	for {
		select {
		case <-sub.wake:
		case <-r.Context().Done():
			return
		}
		var ended bool
		chunks, ended = sub.take(chunks)
		// A client that stops reading blocks the writes below; the
		// deadline ends it, and its place is free again.
		rc.SetWriteDeadline(time.Now().Add(tapWriteTimeout))
		if d := sub.dropped.Load(); d > reported {
			fmt.Fprintf(w, "# %d points not shown: this client read too slowly\n", d-reported)
			reported = d
		}
		for _, c := range chunks {
			if _, err := w.Write(c); err != nil {
				return
			}
		}
		clear(chunks) // the batches may go
		if rc.Flush() != nil || ended {
			return
		}
	}
}
