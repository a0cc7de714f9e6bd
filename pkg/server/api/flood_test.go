package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"

	"github.com/v2m/v2m/pkg/server/auth"
	"github.com/v2m/v2m/pkg/server/sqlite"
	"github.com/v2m/v2m/pkg/server/throttle"
	"github.com/v2m/v2m/pkg/server/token"
)

// BenchmarkHealthzDuringLoginFlood measures /healthz while 32 clients send wrong passwords as
// fast as they can, at standalone's bcrypt cost (10):
//
//   - unbounded: every login hashes at once and nothing is throttled (v2m before its limits);
//   - bounded: at most auth.DefaultHashConcurrency bcrypt computations at once; each flood
//     request comes from another IP and email, so no throttle applies;
//   - throttled: the default limits, the flood from one client IP (a script).
//
// Each iteration is one /healthz request, 10 ms apart; run it with -benchtime=200x. It reports
// /healthz's median, p99 and worst latency, the flood's attempts answered per second by
// status, and the median latency of a real login made every 250 ms during the flood.
func BenchmarkHealthzDuringLoginFlood(b *testing.B) {
	for _, sc := range []struct {
		name      string
		slots     int
		limited   bool
		oneClient bool
	}{
		{"unbounded", 1 << 20, false, false},
		{"bounded", 0, false, false},
		{"throttled", 0, true, true},
	} {
		b.Run(sc.name, func(b *testing.B) {
			db, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "v2m.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			pem, _ := token.GenerateEd25519PEM()
			k, _ := token.ParseKey(token.EdDSA, pem)
			svc := &auth.Service{Users: db.Users(), Tokens: &token.Issuer{Key: k, Issuer: "v2m"}, Cost: bcrypt.DefaultCost,
				HashConcurrency: sc.slots}
			cfg := Config{Accounts: svc, Verifier: &token.Verifier{Alg: token.EdDSA, Issuer: "v2m", Keys: token.StaticKeys{k}},
				TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
			if sc.limited { // the defaults of v2md (daemon.throttleSettings)
				store := func(r rate.Limit, burst int) *throttle.Store {
					return throttle.NewStore(throttle.Limit{Rate: r, Burst: burst}, 0)
				}
				cfg.LoginLimit = throttle.NewPolicy(store(rate.Every(time.Minute), 10), store(rate.Every(2*time.Second), 30))
			}
			srv := httptest.NewServer(New(cfg))
			defer srv.Close()
			if _, err := svc.Register(context.Background(), "ann@example.com", "correct horse"); err != nil {
				b.Fatal(err)
			}
			tr := &http.Transport{MaxIdleConnsPerHost: 64}
			defer tr.CloseIdleConnections()
			hc := &http.Client{Transport: tr}
			login := func(email, pw, ip string) int {
				req, _ := http.NewRequest("POST", srv.URL+"/v1/tokens", nil)
				req.SetBasicAuth(email, pw)
				req.Header.Set("X-Forwarded-For", ip)
				resp, err := hc.Do(req)
				if err != nil {
					return 0
				}
				resp.Body.Close()
				return resp.StatusCode
			}

			ctx, stop := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			var n atomic.Int64
			var byStatus sync.Map
			for w := range 32 {
				wg.Go(func() {
					for i := 0; ctx.Err() == nil; i++ {
						ip, email := fmt.Sprintf("10.%d.%d.%d", w, i>>8&255, i&255), fmt.Sprintf("u%d-%d@example.com", w, i)
						if sc.oneClient {
							ip, email = "203.0.113.1", "ann@example.com"
						}
						code := login(email, "wrong password", ip)
						n.Add(1)
						c, _ := byStatus.LoadOrStore(code, new(atomic.Int64))
						c.(*atomic.Int64).Add(1)
					}
				})
			}
			var real []time.Duration
			var realFail atomic.Int64
			wg.Go(func() {
				for i := 0; ctx.Err() == nil; i++ {
					start := time.Now()
					if code := login("ann@example.com", "correct horse", fmt.Sprintf("192.0.2.%d", i%250)); code == 200 {
						real = append(real, time.Since(start))
					} else if ctx.Err() == nil {
						realFail.Add(1)
					}
					select {
					case <-ctx.Done():
					case <-time.After(250 * time.Millisecond):
					}
				}
			})
			time.Sleep(500 * time.Millisecond) // let the flood build up before measuring
			began := time.Now()
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				resp, err := hc.Get(srv.URL + "/healthz")
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
				lat = append(lat, time.Since(start))
				time.Sleep(10 * time.Millisecond)
			}
			b.StopTimer()
			elapsed := time.Since(began)
			stop()
			wg.Wait()
			slices.Sort(lat)
			slices.Sort(real)
			ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
			b.ReportMetric(ms(lat[len(lat)/2]), "healthz-p50-ms")
			b.ReportMetric(ms(lat[len(lat)*99/100]), "healthz-p99-ms")
			b.ReportMetric(ms(lat[len(lat)-1]), "healthz-max-ms")
			b.ReportMetric(float64(n.Load())/elapsed.Seconds(), "flood-req/s")
			if len(real) > 0 {
				b.ReportMetric(ms(real[len(real)/2]), "real-login-p50-ms")
			}
			b.ReportMetric(float64(realFail.Load()), "real-login-refused")
			byStatus.Range(func(k, v any) bool {
				b.Logf("flood: %d answers with status %v", v.(*atomic.Int64).Load(), k)
				return true
			})
		})
	}
}
