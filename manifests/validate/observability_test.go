package validate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// metricsSource is where v2md's metrics are declared.
var metricsSource = filepath.Join(manifestsDir, "..", "pkg", "server", "metrics", "metrics.go")

// collectorMetrics are series of the Go and process collectors that metrics.New registers.
var collectorMetrics = []string{"go_goroutines", "process_resident_memory_bytes", "process_cpu_seconds_total"}

// declaredMetrics reads the names of v2md's metrics from their source, and what series each
// exports: a histogram's _bucket, _sum and _count.
func declaredMetrics(t *testing.T) map[string]bool {
	t.Helper()
	src, err := os.ReadFile(metricsSource)
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]bool{}
	for _, m := range regexp.MustCompile(`prometheus\.New(\w+?)(?:Vec)?\(prometheus\.\w+Opts\{\s*Name:\s*"([a-z0-9_]+)"`).FindAllSubmatch(src, -1) {
		kind, name := string(m[1]), string(m[2])
		series[name] = true
		if kind == "Histogram" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				series[name+s] = true
			}
		}
	}
	if len(series) < 8 {
		t.Fatalf("found only %d metric series in %s: has the declaration's shape changed?", len(series), metricsSource)
	}
	for _, n := range collectorMetrics {
		series[n] = true
	}
	return series
}

// promFuncs are the PromQL words that are not metric names.
var promFuncs = map[string]bool{
	"sum": true, "by": true, "rate": true, "histogram_quantile": true, "clamp_min": true, "le": true, "without": true,
	"avg": true, "max": true, "min": true, "increase": true, "label_values": true, "job": true,
}

// metricRef finds the names a PromQL expression reads: words followed by { or [ or (space and)
// a closing parenthesis, that are not functions or labels.
var metricRef = regexp.MustCompile(`\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*[{\[]`)

// exprs returns every "expr" and query string in the dashboard's JSON.
func exprs(v any) []string {
	var out []string
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && (k == "expr" || k == "definition") {
				out = append(out, s)
			} else {
				out = append(out, exprs(e)...)
			}
		}
	case []any:
		for _, e := range x {
			out = append(out, exprs(e)...)
		}
	}
	return out
}

// TestDashboardNamesOnlyExistingMetrics: the Grafana dashboard is valid JSON, every panel has a
// query, and every query names only metrics that v2md exports.
func TestDashboardNamesOnlyExistingMetrics(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(manifestsDir, "dashboards", "v2m.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboards/v2m.json: %v", err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("dashboard has title %q, uid %q, %d panels", d.Title, d.UID, len(d.Panels))
	}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 || p.Targets[0].Expr == "" {
			t.Errorf("panel %q has no query", p.Title)
		}
	}
	var raw any
	_ = json.Unmarshal(b, &raw)
	series := declaredMetrics(t)
	used := map[string]bool{}
	for _, e := range exprs(raw) {
		refs := metricRef.FindAllStringSubmatch(e, -1)
		if strings.Contains(e, "label_values(") {
			refs = append(refs, regexp.MustCompile(`label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)`).FindAllStringSubmatch(e, -1)...)
		}
		if len(refs) == 0 {
			t.Errorf("query %q names no metric", e)
		}
		for _, m := range refs {
			name := m[1]
			if promFuncs[name] {
				continue
			}
			used[name] = true
			if !series[name] {
				t.Errorf("query %q reads %s, which v2md does not export (see pkg/server/metrics)", e, name)
			}
		}
	}
	for name := range series {
		if strings.HasPrefix(name, "v2m_") && !strings.HasSuffix(name, "_sum") && !strings.HasSuffix(name, "_count") &&
			!used[name] && !used[name+"_bucket"] {
			t.Errorf("metric %s has no panel", name)
		}
	}
}

// TestOtelCollectorComponent: the local overlay with components/otel-collector renders, passes
// every check (the drift check knows V2MD_OTLP_ENDPOINT for every service), points every v2md
// service at the collector, and lets v2md reach its OTLP port.
func TestOtelCollectorComponent(t *testing.T) {
	objs := renderDecode(t, filepath.Join(manifestsDir, "validate/testdata/local-otel"))
	for _, p := range Check(objs, contract(t)) {
		t.Errorf("%s", p)
	}
	var endpoint string
	var kinds []string
	for _, o := range objs {
		if o.Name == "v2m-common" {
			endpoint = o.Typed.(*corev1.ConfigMap).Data["V2MD_OTLP_ENDPOINT"]
		}
		if o.Name == "otel-collector" || strings.Contains(o.Name, "otel-collector") {
			kinds = append(kinds, o.Kind)
		}
	}
	if endpoint != "http://otel-collector:4318" {
		t.Errorf("v2m-common has V2MD_OTLP_ENDPOINT %q, want http://otel-collector:4318", endpoint)
	}
	slices.Sort(kinds)
	if want := []string{"ConfigMap", "Deployment", "NetworkPolicy", "NetworkPolicy", "Service"}; !slices.Equal(kinds, want) {
		t.Errorf("collector objects %v, want %v", kinds, want)
	}
	for _, o := range renderDecode(t, filepath.Join(manifestsDir, "overlays/local")) {
		if cm, ok := o.Typed.(*corev1.ConfigMap); ok && cm.Data["V2MD_OTLP_ENDPOINT"] != "" {
			t.Errorf("overlays/local sets V2MD_OTLP_ENDPOINT in %s: tracing is the component's, off by default", o.Name)
		}
	}
}
