package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/pflag"

	"github.com/s3sync/s3sync/remote"
)

// observeFlags are the mount's logging and metrics flags.
type observeFlags struct {
	logs        logFlags
	metricsAddr string
}

func (o *observeFlags) register(f *pflag.FlagSet) {
	o.logs.register(f)
	f.StringVar(&o.metricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://HOST:PORT/metrics (e.g. 127.0.0.1:9464; port 0 picks a free one, logged); the mount refuses to start if it cannot listen there")
}

func (o *observeFlags) validate() error {
	if err := o.logs.validate(); err != nil {
		return err
	}
	return validateMetricsAddr(o.metricsAddr)
}

// validateMetricsAddr checks --metrics-addr before anything is mounted.
func validateMetricsAddr(addr string) error {
	if addr == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return usageErr("--metrics-addr %q is not HOST:PORT; use e.g. 127.0.0.1:9464, or :9464 for every interface", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return usageErr("--metrics-addr %q: port %q is not a number from 0 to 65535", addr, port)
	}
	return nil
}

// transferResults are the result labels of the transfer counters, all
// exported from the start so that rate() and alerts see zeros, not gaps.
var transferResults = []string{resultOK, resultFailed, resultConflict, resultChanged, resultCanceled}

const (
	resultOK       = "ok"
	resultFailed   = "failed"   // any other error; retried or moved to the failed list
	resultConflict = "conflict" // another writer's version was there (412); both kept
	resultChanged  = "changed"  // the file (or a copy's source) changed during the transfer; sent again
	resultCanceled = "canceled" // the mount was stopping
)

// mountMetrics is what `mount --metrics-addr` serves. The gauges are read
// from the journal and the drain at scrape time, by the code that answers
// `s3sync status` (statusCollector), so the two never disagree; the
// counters and histograms are kept here. A nil *mountMetrics (no
// --metrics-addr) does nothing.
type mountMetrics struct {
	reg *prometheus.Registry
	srv *http.Server

	requests  *prometheus.HistogramVec
	commits   *prometheus.HistogramVec
	transfers map[string]*prometheus.CounterVec // by remote.Transfer's Op: upload, copy, delete, download
	bytes     map[string]*prometheus.CounterVec

	closeOnce sync.Once
}

// listenMetrics takes the metrics address now, before the mount: a port
// that is taken refuses the mount, because a service whose metrics vanish
// silently is a service nobody watches.
func listenMetrics(addr string, log *slog.Logger) (*mountMetrics, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr %s: %v; choose another address or stop what uses it", addr, errors.Unwrap(err))
	}
	m := &mountMetrics{reg: prometheus.NewRegistry(),
		transfers: map[string]*prometheus.CounterVec{}, bytes: map[string]*prometheus.CounterVec{}}
	m.requests = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "s3sync_s3_request_duration_seconds",
		Help:    "Time from sending an S3 request to reading its answer's headers, per attempt, by S3 operation and result (ok, error).",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
	}, []string{"operation", "result"})
	m.commits = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "s3sync_journal_commit_duration_seconds",
		Help:    "Time one journal group commit took (transaction and fsyncs), by result (ok, error).",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"result"})
	for _, t := range []struct{ op, count, bytes, what string }{
		{remote.OpUpload, "s3sync_uploads_total", "s3sync_upload_bytes_total", "Objects uploaded (files, links, directory markers)"},
		{remote.OpCopy, "s3sync_copies_total", "s3sync_copy_bytes_total", "Server-side copies (renames, metadata updates)"},
		{remote.OpDelete, "s3sync_deletes_total", "", "Objects deleted"},
		{remote.OpDownload, "s3sync_downloads_total", "s3sync_download_bytes_total", "Objects downloaded (mount --pull)"},
	} {
		m.transfers[t.op] = prometheus.NewCounterVec(prometheus.CounterOpts{Name: t.count, Help: t.what + ", by result."}, []string{"result"})
		m.reg.MustRegister(m.transfers[t.op])
		if t.bytes != "" {
			m.bytes[t.op] = prometheus.NewCounterVec(prometheus.CounterOpts{Name: t.bytes, Help: t.what + ": their bytes, by result."}, []string{"result"})
			m.reg.MustRegister(m.bytes[t.op])
		}
		for _, r := range transferResults {
			m.transfers[t.op].WithLabelValues(r)
			if t.bytes != "" {
				m.bytes[t.op].WithLabelValues(r)
			}
		}
	}
	m.reg.MustRegister(m.requests, m.commits,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError)}))
	m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go m.srv.Serve(ln)
	log.Info("serving metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	return m, nil
}

// observeRequest is remote.Config.ObserveRequest.
func (m *mountMetrics) observeRequest() remote.RequestObserver {
	if m == nil {
		return nil
	}
	return func(op string, d time.Duration, err error) {
		m.requests.WithLabelValues(op, okOrError(err)).Observe(d.Seconds())
	}
}

// observeCommit is journal.Options.OnCommit.
func (m *mountMetrics) observeCommit() func(time.Duration, error) {
	if m == nil {
		return nil
	}
	return func(d time.Duration, err error) {
		m.commits.WithLabelValues(okOrError(err)).Observe(d.Seconds())
	}
}

func okOrError(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

// watch adds the gauges, read from st as `s3sync status` reads them.
// Until then (the start-up scan of a large WORKDIR may take minutes) the
// counters and histograms are served alone.
func (m *mountMetrics) watch(st *statusServer) {
	if m == nil {
		return
	}
	m.reg.MustRegister(newStatusCollector(st))
}

// close stops serving; it may be called more than once.
func (m *mountMetrics) close() {
	if m == nil {
		return
	}
	m.closeOnce.Do(func() { m.srv.Close() })
}

func (m *mountMetrics) count(op string, size int64, err error) {
	r := transferResult(err)
	m.transfers[op].WithLabelValues(r).Inc()
	if b := m.bytes[op]; b != nil && size > 0 {
		b.WithLabelValues(r).Add(float64(size))
	}
}

func transferResult(err error) string {
	switch {
	case err == nil:
		return resultOK
	case errors.Is(err, context.Canceled):
		return resultCanceled
	case errors.Is(err, remote.ErrConflict):
		return resultConflict
	case errors.Is(err, remote.ErrChanged), errors.Is(err, remote.ErrBadDigest), errors.Is(err, errCheckRefused):
		return resultChanged
	}
	return resultFailed
}

// errCheckRefused marks an upload whose PutOptions.Check refused it: the
// syncer saw the file change while it was read.
var errCheckRefused = errors.New("the file changed while it was read")

// observeTransfer is remote.Config.ObserveTransfer: it counts the drain's
// transfers by result. The counting happens at the S3 boundary, so every
// object the mount writes or deletes is counted once per attempt whatever
// part of the drain made it.
func (m *mountMetrics) observeTransfer() remote.TransferObserver {
	if m == nil {
		return nil
	}
	return func(t remote.Transfer) {
		if t.Op == remote.OpDelete {
			m.countDeletes(t.Keys, t.Failed)
			return
		}
		err := t.Err
		if err != nil && t.CheckRefused {
			err = errCheckRefused
		}
		m.count(t.Op, t.Size, err)
	}
}

// countDeletes: every key not returned as failed is gone (remote reports
// each key of a failed request as failed).
func (m *mountMetrics) countDeletes(n int, failed []remote.DeleteError) {
	m.transfers[remote.OpDelete].WithLabelValues(resultOK).Add(float64(n - len(failed)))
	for _, f := range failed {
		m.count(remote.OpDelete, 0, f.Err)
	}
}

// observeTransfers is one remote.TransferObserver that tells each of obs
// that is set.
func observeTransfers(obs ...remote.TransferObserver) remote.TransferObserver {
	return func(t remote.Transfer) {
		for _, o := range obs {
			if o != nil {
				o(t)
			}
		}
	}
}

// statusCollector reads the gauges at scrape time from the same report
// `s3sync status --json` prints.
type statusCollector struct {
	st                                                       *statusServer
	pending, pendingBytes, oldest, inFlight, failed          *prometheus.Desc
	conflicts, offline, paused, lastUpload, pendingBytesPart *prometheus.Desc
	cachedInodes                                             *prometheus.Desc
}

func newStatusCollector(st *statusServer) *statusCollector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return &statusCollector{st: st,
		pending:          d("s3sync_pending_records", "Changes journaled and not yet in the bucket (status: pending)."),
		pendingBytes:     d("s3sync_pending_bytes", "Size of the files those changes are to send (status: pending_bytes)."),
		pendingBytesPart: d("s3sync_pending_bytes_partial", "1 when s3sync_pending_bytes measured only the first 1000 pending files and is a lower bound."),
		oldest:           d("s3sync_oldest_pending_age_seconds", "Age of the oldest pending change: how far the bucket is behind (status: oldest_pending_age_seconds); 0 when nothing is pending."),
		inFlight:         d("s3sync_in_flight", "Changes being sent now (status: in_flight)."),
		failed:           d("s3sync_failed_records", "Changes that failed for good and wait for `s3sync status --retry` or the next mount (status: failed)."),
		conflicts:        d("s3sync_conflicts", "Paths another writer changed in the bucket, both versions kept (status: conflicts)."),
		offline:          d("s3sync_offline", "1 while the endpoint is unreachable and changes wait (status: offline)."),
		paused:           d("s3sync_paused", "1 while the whole drain waits: endpoint unreachable, credentials or clock refused, access denied everywhere (status: paused)."),
		cachedInodes:     d("s3sync_cached_inodes", "Files and directories the kernel holds looked up through the mount, at most --max-cached-inodes (status: cached_inodes)."),
		lastUpload:       d("s3sync_last_upload_timestamp_seconds", "Unix time of the last finished upload (status: last_upload); absent before the first."),
	}
}

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.pending, c.pendingBytes, c.pendingBytesPart, c.oldest, c.inFlight, c.failed, c.conflicts, c.offline, c.paused, c.lastUpload, c.cachedInodes} {
		ch <- d
	}
}

func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	rep, err := c.st.report()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.pending, err)
		return
	}
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	gauge(c.pending, float64(rep.Pending))
	gauge(c.pendingBytes, float64(rep.PendingBytes))
	gauge(c.pendingBytesPart, boolGauge(rep.PendingBytesPartial))
	gauge(c.oldest, rep.OldestAgeSeconds)
	gauge(c.inFlight, float64(rep.InFlight))
	gauge(c.failed, float64(len(rep.Failed)))
	gauge(c.conflicts, float64(len(rep.Conflicts)))
	gauge(c.offline, boolGauge(rep.Offline))
	gauge(c.paused, boolGauge(rep.Paused != ""))
	gauge(c.cachedInodes, float64(rep.CachedInodes))
	if rep.LastUpload != nil {
		gauge(c.lastUpload, float64(rep.LastUpload.UnixNano())/1e9)
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
