package handlers

import (
	"context"
	"io/fs"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"ttconsole/internal/mailer"
	"ttconsole/internal/ratelimit"
	"ttconsole/models"
	"ttconsole/upstream"
)

func (a *App) init() error {
	a.Log = withRedaction(a.Log)
	a.ipFromXFF, a.ipFromRealIP = newIPExtractors(a.Config.TrustedProxies)
	var err error
	if a.forms, err = newFormLimits(); err != nil {
		return err
	}
	if a.Upstream == nil {
		a.Upstream = upstream.NewInProcess(upstream.NewSimulator(), DefaultUpstreamTimeout)
	}
	for _, d := range []struct {
		field *time.Duration
		def   time.Duration
	}{
		{&a.UpstreamTimeout, DefaultUpstreamTimeout}, {&a.HoldTTL, DefaultHoldTTL}, {&a.TaskTTL, DefaultTaskTTL},
		{&a.TaskPoll, DefaultTaskPoll}, {&a.StreamMax, DefaultStreamMax}, {&a.StreamWriteTimeout, DefaultStreamWriteTimeout},
		{&a.BodyTimeout, DefaultBodyTimeout}, {&a.RedisProbe, DefaultRedisProbe}, {&a.MailPoll, DefaultMailPoll},
	} {
		if *d.field == 0 {
			*d.field = d.def
		}
	}
	a.background, a.stopBackground = context.WithCancel(context.Background())
	a.live.calls = make(map[string]*liveCall)
	a.tasks.Add(1)
	go func() {
		defer a.tasks.Done()
		a.renewHolds(a.background)
	}()
	if a.Registry == nil {
		a.Registry = prometheus.NewRegistry()
		a.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	a.metrics = newMetrics(a.Registry)
	registerHashMetrics(a.Registry, a.Store)
	a.bodies = newBodyQueue(a.Registry)
	go a.bodies.run(a.background, a)
	if a.keyLimits, err = ratelimit.New(a.RateLimitRedis, a.RedisProbe, a.Log, a.Registry); err != nil {
		return err
	}
	a.keyLimits.Start(a.background)
	a.authFailures = newAuthFailures(a.keyLimits, a.Registry)
	if a.Mailer == nil {
		a.Mailer = &mailer.Log{Log: a.Log, From: a.Config.MailFrom}
	}
	if len(a.MailRetries) == 0 {
		a.MailRetries = DefaultMailRetries
	}
	a.mail = newMailWorker(a.Registry)
	a.tasks.Add(1)
	go func() {
		defer a.tasks.Done()
		a.runMail(a.background)
	}()
	return nil
}

func (a *App) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// readyz says whether this instance can serve: the database answers. It
// also says where rate limits are counted; an instance whose Redis is
// unreachable still serves (with per-instance limits), so it stays ready.
func (a *App) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	limits, detail := a.keyLimits.State()
	out := map[string]string{"status": "ok", "database": "ok", "rate_limits": limits, "rate_limits_detail": detail}
	if err := a.Store.DB().Ping(ctx); err != nil {
		a.Log.Warn("readyz: database unreachable", "request_id", RequestID(c), "err", err.Error())
		out["status"], out["database"] = "unavailable", "unreachable"
		return c.JSON(http.StatusServiceUnavailable, out)
	}
	return c.JSON(http.StatusOK, out)
}

func (a *App) metricsHandler() echo.HandlerFunc {
	return echo.WrapHandler(promhttp.HandlerFor(a.Registry, promhttp.HandlerOpts{}))
}

// metrics counts requests and their latency by route and status.
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	routes   map[string]bool
	// overHold counts calls whose upstream usage cost more than their hold:
	// each was charged only the hold, so the hold missed something.
	overHold prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tt_http_requests_total", Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tt_http_request_duration_seconds",
			Help:    "HTTP request latency by route and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "method"}),
	}
	m.overHold = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tt_gateway_usage_over_hold_total",
		Help: "Gateway calls whose upstream usage cost more than their hold; each was charged the hold.",
	})
	reg.MustRegister(m.requests, m.latency, m.overHold)
	return m
}

// registerHashMetrics shows how busy password hashing is: each hash holds
// 19 MiB, so the product runs only a few at once and refuses the requests
// that find every slot taken for too long.
func registerHashMetrics(reg prometheus.Registerer, store *models.Store) {
	stat := func(f func(models.HashStats) float64) func() float64 {
		return func() float64 { return f(store.HashStats()) }
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tt_password_hash_slots",
			Help: "Password hashes that may run at once."},
			stat(func(s models.HashStats) float64 { return float64(s.Slots) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tt_password_hashes_running",
			Help: "Password hashes running now."},
			stat(func(s models.HashStats) float64 { return float64(s.Running) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tt_password_hashes_total",
			Help: "Password hashes computed (sign-ups, logins, password changes)."},
			stat(func(s models.HashStats) float64 { return float64(s.Hashed) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tt_password_hash_busy_total",
			Help: "Requests answered 503 because every password hashing slot stayed taken."},
			stat(func(s models.HashStats) float64 { return float64(s.Refused) })),
	)
}

// setRoutes records the route table, so unknown paths share one label
// instead of growing the metrics without bound.
func (m *metrics) setRoutes(rs []*echo.Route) {
	m.routes = make(map[string]bool, len(rs))
	for _, r := range rs {
		m.routes[r.Path] = true
	}
}

func (m *metrics) observe(route, method string, status int, took time.Duration) {
	if !m.routes[route] {
		route = "unmatched"
	}
	switch method {
	case http.MethodGet, http.MethodPost, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions:
	default:
		method = "other"
	}
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route, method).Observe(took.Seconds())
}

func staticFiles(fsys fs.FS) http.Handler {
	h := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		h.ServeHTTP(w, r)
	})
}
