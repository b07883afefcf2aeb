package agent

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sluicehq/sluice/agent/cluster"
	"github.com/sluicehq/sluice/agent/pipeline"
)

// lagBuckets span a healthy pipeline (tens of milliseconds) to a sink that
// was down for minutes, in seconds.
var lagBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}

// The metrics the agent exports. The Grafana agent-health dashboard and
// its test depend on these names: change them together.
var (
	descFeedMessages   = feedDesc("sluice_feed_messages_total", "Batches received from the feed's plugin and stored in the disk buffer.")
	descFeedPoints     = feedDesc("sluice_feed_points_total", "Points received from the feed and stored in the disk buffer.")
	descFeedRejected   = prometheus.NewDesc("sluice_feed_rejected_total", "Points of the feed rejected by normalization, by reason.", []string{"feed", "reason"}, nil)
	descFeedPluginDrop = feedDesc("sluice_feed_plugin_dropped_total", "Points the feed's plugin dropped because its queue was full.")
	descFeedRestarts   = feedDesc("sluice_feed_restarts_total", "Times the feed's plugin stopped and was restarted.")
	descFeedUp         = feedDesc("sluice_feed_up", "1 while the feed's plugin is running, else 0.")
	descFeedReconnects = feedDesc("sluice_feed_reconnects_total", "Reconnects the feed's plugin reported (events of kind reconnect).")
	descFeedGaps       = feedDesc("sluice_feed_gaps_total", "Gaps the feed's plugin reported (events of kind gap).")
	descFeedBackfilled = feedDesc("sluice_feed_backfilled_points_total", "Points the feed's plugin backfilled (events of kind backfill, their count).")
	descFeedEvents     = prometheus.NewDesc("sluice_feed_events_total", "Events the feed's plugin reported, by kind (each is a feed_events point).", []string{"feed", "kind"}, nil)
	descFeedStale      = feedDesc("sluice_feed_stale", "Streams of the feed its plugin reports as stale (no data for longer than it allows; the feed as a whole counts as one), 0 while it is live.")
	descFeedStaleSec   = feedDesc("sluice_feed_stale_seconds", "Seconds the feed's longest-stale stream has had no data; 0 while none is stale.")
	descFeedDiscarded  = prometheus.NewDesc("sluice_feed_plugin_discarded_total", "Messages the feed's plugin discarded before they became points, by reason.", []string{"feed", "reason"}, nil)

	descSinkWritten  = sinkDesc("sluice_sink_points_written_total", "Points written to the sink.")
	descSinkDropped  = prometheus.NewDesc("sluice_sink_points_dropped_total", "Points routed to the sink and dropped, by reason.", []string{"sink", "reason"}, nil)
	descSinkRetries  = sinkDesc("sluice_sink_retries_total", "Failed writes to the sink that were retried.")
	descSinkBuffered = sinkDesc("sluice_sink_buffered_points", "Points routed to the sink and not yet written.")
	descSinkBufBytes = sinkDesc("sluice_sink_buffer_bytes", "Bytes of the disk buffer the sink has not yet written.")
	descSinkBufDisk  = sinkDesc("sluice_sink_buffer_disk_bytes", "Bytes the sink's part of the disk buffer takes on disk.")
	descSinkBufMax   = sinkDesc("sluice_sink_buffer_max_bytes", "The sink's bound on unwritten buffer bytes (max_buffer_bytes); past it when_full decides.")
	descSinkFailed   = sinkDesc("sluice_sink_failed", "1 while the sink is failed (needs an operator), else 0.")

	descBufferBytes = prometheus.NewDesc("sluice_buffer_bytes", "Size of the disk buffer on disk.", nil, nil)
	descBufferMax   = prometheus.NewDesc("sluice_buffer_max_bytes", "Bound on the disk buffer's size (buffer.max_bytes).", nil, nil)
	descBufferLost  = prometheus.NewDesc("sluice_buffer_lost_records", "Buffer records skipped as corrupt when the agent started (their points are lost).", nil, nil)
	descReloadOK    = prometheus.NewDesc("sluice_config_last_reload_successful", "1 if the last config reload was applied (or none was tried), 0 if it was rejected.", nil, nil)
	descRestartNeed = prometheus.NewDesc("sluice_config_restart_needed", "1 if the config on disk has changes that only a restart applies.", nil, nil)
	descBuildInfo   = prometheus.NewDesc("sluice_build_info", "Always 1; the version label is the agent's.", []string{"version"}, nil)

	// Cluster mode only.
	descClusterChanges = prometheus.NewDesc("sluice_cluster_lease_changes_total", "Feed leases this agent acquired (its feed started here), released (handed over, or the agent stopped) or lost (taken by another agent, or not renewed in time), by change.", []string{"change"}, nil)
	descClusterHeld    = prometheus.NewDesc("sluice_cluster_feeds_held", "Feeds this agent holds a lease for.", nil, nil)
	descClusterAgents  = prometheus.NewDesc("sluice_cluster_agents", "Live agents of the cluster, as this agent last saw them.", nil, nil)
	descClusterActive  = prometheus.NewDesc("sluice_cluster_active", "1 while this agent is an active member of its cluster (connected, announced, renewing), else 0.", nil, nil)

	allMetricsDescs = []*prometheus.Desc{descFeedMessages, descFeedPoints, descFeedRejected, descFeedPluginDrop, descFeedRestarts, descFeedUp, descFeedReconnects, descFeedGaps, descFeedBackfilled, descFeedEvents, descFeedStale, descFeedStaleSec, descFeedDiscarded, descSinkWritten, descSinkDropped, descSinkRetries, descSinkBuffered, descSinkBufBytes, descSinkBufDisk, descSinkBufMax, descSinkFailed, descBufferBytes, descBufferMax, descBufferLost, descReloadOK, descRestartNeed, descBuildInfo, descClusterChanges, descClusterHeld, descClusterAgents, descClusterActive}
	sinkDropReasons = []pipeline.Reason{pipeline.ReasonBufferFull, pipeline.ReasonRejected, pipeline.ReasonSkipped, pipeline.ReasonUndecodable}
	// Every reason is exported from the start, at 0, so that rates and
	// dashboards see a series before the first rejection.
	feedRejectReasons = []pipeline.Reason{
		pipeline.ReasonEmptyMeasurement, pipeline.ReasonNoFields, pipeline.ReasonTooManyTags,
		pipeline.ReasonTooManyFields, pipeline.ReasonKeyTooLong, pipeline.ReasonEmptyKey,
		pipeline.ReasonDuplicateKey, pipeline.ReasonValueTooLong, pipeline.ReasonInvalidUTF8,
		pipeline.ReasonNonFinite, pipeline.ReasonTimeOutOfRange, pipeline.ReasonUndecodable,
		pipeline.ReasonTooManyMeasurements, pipeline.ReasonTooManyColumns,
	}
	lagHistogramName = "sluice_lag_seconds"
)

func feedDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, []string{"feed"}, nil)
}

func sinkDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, []string{"sink"}, nil)
}

// newLagHistogram is the end-to-end lag: event time to the sink's commit.
func newLagHistogram() *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    lagHistogramName,
		Help:    "Seconds from a point's event time to its commit in the sink.",
		Buckets: lagBuckets,
	}, []string{"sink"})
}

// newRegistry returns the registry /metrics serves: the agent's own
// metrics, the lag histogram, and the Go runtime and process collectors.
func newRegistry(a *Agent, lag *prometheus.HistogramVec) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		statusCollector{a},
		sinkStatsCollector{a},
		lag,
	)
	return reg
}

// sinkStatsCollector exports the figures sinks keep of their own
// (sinks.StatsReporter) as sluice_sink_<name>{sink}. Which there are
// depends on the sinks configured, so it describes none: the registry
// then checks only that names, labels and help agree within a scrape.
type sinkStatsCollector struct{ a *Agent }

func (c sinkStatsCollector) Describe(chan<- *prometheus.Desc) {}

func (c sinkStatsCollector) Collect(ch chan<- prometheus.Metric) {
	r := c.a.run.Load()
	if r == nil {
		return
	}
	observed := r.outputs.observed // read-only once the agent runs
	for _, name := range sortedKeys(observed) {
		for _, st := range observed[name].stats() {
			labels, values := []string{"sink"}, []string{name}
			if st.Label != "" {
				labels, values = append(labels, st.Label), append(values, st.LabelValue)
			}
			kind := prometheus.GaugeValue
			if st.Counter {
				kind = prometheus.CounterValue
			}
			desc := prometheus.NewDesc("sluice_sink_"+st.Name, st.Help, labels, nil)
			m, err := prometheus.NewConstMetric(desc, kind, st.Value, values...)
			if err != nil {
				m = prometheus.NewInvalidMetric(desc, err)
			}
			ch <- m
		}
	}
}

// statusCollector reads the feeds' and sinks' status snapshots at scrape
// time, so the counters exist once, in the code that keeps them.
type statusCollector struct{ a *Agent }

func (c statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allMetricsDescs {
		ch <- d
	}
}

func (c statusCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.a.Status()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, f := range st.Feeds {
		counter(descFeedMessages, f.Batches, f.Name)
		counter(descFeedPoints, f.Points, f.Name)
		for _, r := range feedRejectReasons {
			counter(descFeedRejected, f.Rejected[r], f.Name, string(r))
		}
		for r, n := range f.Rejected {
			if !slices.Contains(feedRejectReasons, r) {
				counter(descFeedRejected, n, f.Name, string(r))
			}
		}
		counter(descFeedPluginDrop, f.PluginDropped, f.Name)
		counter(descFeedRestarts, f.Restarts, f.Name)
		gauge(descFeedUp, boolFloat(f.State == FeedRunning), f.Name)
		counter(descFeedReconnects, f.Reconnects, f.Name)
		counter(descFeedGaps, f.Gaps, f.Name)
		counter(descFeedBackfilled, f.BackfilledPoints, f.Name)
		for k, n := range f.Events {
			counter(descFeedEvents, n, f.Name, k)
		}
		var staleFor float64
		for _, s := range f.Stale {
			staleFor = max(staleFor, s.StaleSeconds)
		}
		gauge(descFeedStale, float64(len(f.Stale)), f.Name)
		gauge(descFeedStaleSec, staleFor, f.Name)
		for r, n := range f.PluginDiscarded {
			counter(descFeedDiscarded, n, f.Name, r)
		}
	}
	for _, s := range st.Sinks {
		counter(descSinkWritten, s.Written, s.Name)
		for _, r := range sinkDropReasons {
			counter(descSinkDropped, s.Dropped[r], s.Name, string(r))
		}
		counter(descSinkRetries, s.Retries, s.Name)
		gauge(descSinkBuffered, float64(s.BufferedPoints), s.Name)
		gauge(descSinkBufBytes, float64(s.BufferedBytes), s.Name)
		gauge(descSinkBufDisk, float64(s.DiskBytes), s.Name)
		gauge(descSinkBufMax, float64(s.MaxBytes), s.Name)
		gauge(descSinkFailed, boolFloat(s.State == pipeline.SinkFailed), s.Name)
	}
	gauge(descBufferBytes, float64(st.BufferBytes))
	gauge(descBufferMax, float64(st.BufferMaxBytes))
	var lost uint64
	if st.BufferRepair != nil {
		lost = st.BufferRepair.LostRecords
	}
	gauge(descBufferLost, float64(lost))
	gauge(descReloadOK, boolFloat(st.ConfigError == ""))
	gauge(descRestartNeed, boolFloat(len(st.RestartNeeded) > 0))
	gauge(descBuildInfo, 1, c.a.opts.Version)
	if cs := st.Cluster; cs != nil {
		for _, change := range []string{cluster.ChangeAcquired, cluster.ChangeReleased, cluster.ChangeLost} {
			counter(descClusterChanges, cs.Changes[change], change)
		}
		gauge(descClusterHeld, float64(cs.Held))
		gauge(descClusterAgents, float64(len(cs.Agents)))
		gauge(descClusterActive, boolFloat(cs.State == cluster.StateActive))
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
