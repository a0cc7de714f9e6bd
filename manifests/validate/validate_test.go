package validate

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	rabbitmqv1beta1 "github.com/rabbitmq/cluster-operator/v2/api/v1beta1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"sigs.k8s.io/yaml"
)

// manifestsDir is the root of the manifests module, repoRoot the root of the v2m module.
const (
	manifestsDir = ".."
	repoRoot     = "../.."
)

func ci() bool { return os.Getenv("CI") == "true" }

// missing skips the test on a developer's machine and fails it under CI=true.
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	if ci() {
		t.Fatalf("CI=true and a required tool is missing: "+format, args...)
	}
	t.Skipf("skipping: "+format, args...)
}

var (
	contractOnce sync.Once
	contractVal  *Contract
	contractSrc  string
	contractErr  error
	v2mdBin      string
)

// contract returns the contract of the real v2md, built from ../cmd/v2md, or, when that does
// not build yet, the fixture testdata/describe.json. Under CI=true the real binary is required.
func contract(t *testing.T) *Contract {
	t.Helper()
	contractOnce.Do(func() {
		ctx := context.Background()
		dir, err := os.MkdirTemp("", "v2md-describe-")
		if err != nil {
			contractErr = err
			return
		}
		bin := filepath.Join(dir, "v2md")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/v2md")
		cmd.Dir = repoRoot
		out, buildErr := cmd.CombinedOutput()
		if buildErr == nil {
			v2mdBin = bin
			contractVal, contractErr = Describe(ctx, bin)
			contractSrc = "v2md describe (built from ./cmd/v2md)"
			return
		}
		if ci() {
			contractErr = &buildError{out: string(out), err: buildErr}
			return
		}
		f, err := os.Open("testdata/describe.json")
		if err != nil {
			contractErr = err
			return
		}
		defer f.Close()
		contractVal, contractErr = ReadContract(f)
		contractSrc = "testdata/describe.json (./cmd/v2md does not build: " + firstLine(string(out)) + ")"
	})
	if contractErr != nil {
		t.Fatalf("contract: %v", contractErr)
	}
	t.Logf("contract from %s", contractSrc)
	return contractVal
}

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string {
	return "CI=true requires the real v2md: go build ./cmd/v2md: " + e.err.Error() + "\n" + e.out
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// overlays are the kustomizations that must render and pass every check.
var overlays = []string{
	"base",
	"overlays/eks",
	"overlays/local",
	"validate/testdata/eks-hpa", // the eks overlay with the HPA component instead of KEDA
}

func renderDecode(t *testing.T, dir string) []Object {
	t.Helper()
	out, err := Render(dir)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	objs, probs := Decode(out)
	for _, p := range probs {
		t.Errorf("%s", p)
	}
	if len(objs) == 0 {
		t.Fatalf("%s renders no objects", dir)
	}
	return objs
}

func TestOverlays(t *testing.T) {
	c := contract(t)
	for _, ov := range overlays {
		t.Run(ov, func(t *testing.T) {
			objs := renderDecode(t, filepath.Join(manifestsDir, ov))
			for _, p := range Check(objs, c) {
				t.Errorf("%s", p)
			}
		})
	}
}

// TestKubectlKustomize renders every overlay with kubectl too, when it is installed, and
// expects the same objects as krusty.
func TestKubectlKustomize(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not in PATH")
	}
	for _, ov := range overlays {
		t.Run(ov, func(t *testing.T) {
			dir := filepath.Join(manifestsDir, ov)
			kout, err := RenderKubectl(context.Background(), kubectl, dir)
			if err != nil {
				t.Fatal(err)
			}
			kobjs, probs := Decode(kout)
			for _, p := range probs {
				t.Errorf("kubectl: %s", p)
			}
			objs := renderDecode(t, dir)
			if got, want := ids(kobjs), ids(objs); !reflect.DeepEqual(got, want) {
				t.Fatalf("kubectl kustomize renders\n%v\nkrusty renders\n%v", got, want)
			}
			byID := map[string]Object{}
			for _, o := range objs {
				byID[o.ID()] = o
			}
			for _, ko := range kobjs {
				var a, b any
				if err := yaml.Unmarshal(ko.YAML, &a); err != nil {
					t.Fatal(err)
				}
				if err := yaml.Unmarshal(byID[ko.ID()].YAML, &b); err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(a, b) {
					t.Errorf("%s differs between kubectl kustomize and krusty", ko.ID())
				}
			}
		})
	}
}

func ids(objs []Object) []string {
	var s []string
	for _, o := range objs {
		s = append(s, o.ID())
	}
	sort.Strings(s)
	return s
}

func kinds(objs []Object) map[string]int {
	m := map[string]int{}
	for _, o := range objs {
		m[o.Kind]++
	}
	return m
}

// TestAutoscalingChoice: KEDA in eks, HPA in eks-hpa, neither in local.
func TestAutoscalingChoice(t *testing.T) {
	for _, tc := range []struct {
		dir       string
		keda, hpa int
	}{
		{"overlays/eks", 1, 0},
		{"validate/testdata/eks-hpa", 0, 1},
		{"overlays/local", 0, 0},
		{"base", 0, 0},
	} {
		k := kinds(renderDecode(t, filepath.Join(manifestsDir, tc.dir)))
		if k["ScaledObject"] != tc.keda || k["HorizontalPodAutoscaler"] != tc.hpa || k["TriggerAuthentication"] != tc.keda {
			t.Errorf("%s: %d ScaledObject, %d TriggerAuthentication, %d HPA; want %d, %d, %d", tc.dir,
				k["ScaledObject"], k["TriggerAuthentication"], k["HorizontalPodAutoscaler"], tc.keda, tc.keda, tc.hpa)
		}
	}
	for _, o := range renderDecode(t, filepath.Join(manifestsDir, "overlays/eks")) {
		if so, ok := o.Typed.(*ScaledObject); ok {
			tr := so.Spec.Triggers[0]
			if so.Spec.ScaleTargetRef.Name != "convert" || tr.Type != "rabbitmq" || tr.Metadata["queueName"] != "video" ||
				tr.Metadata["protocol"] != "http" || tr.AuthenticationRef == nil ||
				*so.Spec.MinReplicaCount != 1 || so.Spec.Fallback == nil || so.Spec.PollingInterval == nil {
				t.Errorf("ScaledObject: %+v", so.Spec)
			}
		}
	}
	for _, o := range renderDecode(t, filepath.Join(manifestsDir, "validate/testdata/eks-hpa")) {
		if h, ok := o.Typed.(*autoscalingv2.HorizontalPodAutoscaler); ok && h.Spec.ScaleTargetRef.Name != "convert" {
			t.Errorf("HPA targets %s", h.Spec.ScaleTargetRef.Name)
		}
	}
}

// TestBroken: each fixture breaks one rule on top of the base; the checks must catch it.
func TestBroken(t *testing.T) {
	c := contract(t)
	for _, tc := range []struct {
		dir, rule, want string
	}{
		{"unknown-env", "drift", "V2MD_MONGO_URL, which is not a setting of \"gateway\""},
		{"wrong-probe-port", "probes", "port 8080 is not the port \"auth\" listens on"},
		{"probe-path", "probes", "path /health is not served by \"notify\""},
		{"unknown-flag", "drift", "flag --smtp-host is not a setting of \"notify\""},
		{"listen-moved", "probes", "is not the port \"gateway\" listens on (:9090)"},
		{"unmounted-file", "secret-files", "jwt-key-file=/etc/v2m/keys/jwt-key is not a file mounted from a Secret"},
		{"secret-env", "secret-files", "comes from a Secret"},
		{"unused-secret", "secret-files", "no *-file setting of \"convert\" reads it"},
		{"short-grace", "drift", "terminationGracePeriodSeconds 600 is not above job-timeout"},
		{"latest-tag", "image", "uses :latest"},
		{"no-tag", "image", "has no tag"},
		{"insecure", "security", "readOnlyRootFilesystem is not true"},
		{"root-user", "security", "runAsUser is 1000, the v2m image runs as 65532"},
		{"no-limits", "resources", "no memory limit"},
		{"no-probe", "probes", "no readinessProbe"},
		{"committed-secret", "secret", "a Secret with data is committed"},
		{"both-autoscalers", "autoscaling", "more than one autoscaler"},
		{"no-pdb", "pdb", "no PodDisruptionBudget"},
		{"text-logs", "drift", "use json"},
		{"public-auth", "edge", "is not the gateway: only the gateway is public"},
		{"metrics-loopback", "metrics", "metrics-addr 127.0.0.1:9090 is loopback"},
		{"ingress-present", "edge", "an Ingress: the edge is the Gateway API"},
		{"route-catchall", "edge", "routes PathPrefix /: only /v1"},
		{"route-readyz", "edge", "routes Exact /readyz"},
		{"body-unlimited", "edge-body", "body.maxSize is 0 (no limit)"},
		{"body-mismatch", "edge-body", "differs from the gateway's max-upload-size 4GiB"},
		{"request-buffering", "edge-streaming", "proxy_request_buffering off"},
		{"short-timeout", "edge-streaming", "proxy_read_timeout is 1m0s, below 10m0s"},
		{"response-buffering", "edge-streaming", "disables response buffering"},
		{"no-ratelimit", "edge-ratelimit", "no RateLimitPolicy limits it"},
		{"spoofable-ip", "client-ip", "mode XForwardedFor behind an NLB that sends the PROXY protocol"},
		{"tls-mismatch", "tls", "Secret v2m-tls-old is not issued by a cert-manager Certificate"},
		{"rabbitmq-313", "broker", "is RabbitMQ 3.13.7-management: use 4.x"},
		{"rabbitmq-even", "broker", "2 replicas: an even cluster"},
		{"rabbitmq-relative", "broker", "vm_memory_high_watermark.relative is computed from the node's RAM"},
		{"rabbitmq-consumer-timeout", "broker", "is not above convert's job-timeout 30m"},
		{"rabbitmq-no-pdb", "pdb", "3 nodes but no PodDisruptionBudget"},
		{"classic-queues", "broker", "declare different queue types"},
		{"keda-amqp", "autoscaling", "counts waiting messages only"},
		{"keda-no-fallback", "autoscaling", "no fallback"},
		{"keda-idle-cooldown", "autoscaling", "cooldownPeriod only applies when scaling to zero"},
		{"podmonitor-port", "podmonitor", "endpoint port"},
		{"psa-latest", "psa", "enforce-version is \"latest\""},
		{"no-prestop", "lifecycle", "no preStop: the pod stops before the edge"},
		{"convert-disruptable", "lifecycle", "not marked do-not-disrupt"},
		{"no-zone-spread", "topology", "no topology spread over topology.kubernetes.io/zone"},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			objs := renderDecode(t, filepath.Join("testdata/broken", tc.dir))
			probs := Check(objs, c)
			for _, p := range probs {
				if p.Rule == tc.rule && strings.Contains(p.Msg, tc.want) {
					t.Logf("caught: %s", p)
					return
				}
			}
			t.Errorf("no %s problem containing %q; got %d problems:", tc.rule, tc.want, len(probs))
			for _, p := range probs {
				t.Errorf("  %s", p)
			}
		})
	}
}

// TestStrictDecode: a misspelled field or a wrong type fails decoding, for built-in kinds and
// for the KEDA kinds.
func TestStrictDecode(t *testing.T) {
	for _, tc := range []struct {
		dir, want string
	}{
		{"typo-field", `unknown field "spec.template.spec.containers[0].livenesProbe"`},
		{"wrong-type", "replicas"},
		{"keda-typo", `unknown field "minReplicas"`},
		{"keda-missing", "queueName"},
		{"unknown-kind", `no kind "Widget" is registered`},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			out, err := Render(filepath.Join("testdata/broken", tc.dir))
			if err != nil {
				t.Fatal(err)
			}
			_, probs := Decode(out)
			for _, p := range probs {
				if p.Rule == "decode" && strings.Contains(p.Msg, tc.want) {
					t.Logf("caught: %s", p)
					return
				}
			}
			t.Errorf("no decode problem containing %q; got %v", tc.want, probs)
		})
	}
}

// TestNoSecretsCommitted scans every YAML file under manifests for Secret objects with data.
func TestNoSecretsCommitted(t *testing.T) {
	err := filepath.WalkDir(manifestsDir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.Contains(p, "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || (filepath.Ext(p) != ".yaml" && filepath.Ext(p) != ".yml") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		docs, err := SplitYAML(data)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			return nil
		}
		for _, doc := range docs {
			var s struct {
				Kind       string            `json:"kind"`
				Data       map[string]string `json:"data"`
				StringData map[string]string `json:"stringData"`
			}
			if err := yaml.Unmarshal(doc, &s); err != nil {
				t.Errorf("%s: %v", p, err)
				continue
			}
			if s.Kind == "Secret" && (len(s.Data) > 0 || len(s.StringData) > 0) {
				t.Errorf("%s commits a Secret with data", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// secretRefs returns every Secret name/key the rendered objects read, from volumes, env and
// KEDA TriggerAuthentications.
func secretRefs(objs []Object) map[string]bool {
	refs := map[string]bool{}
	pod := func(spec *corev1.PodSpec) {
		for _, v := range spec.Volumes {
			if v.Secret != nil {
				for _, it := range v.Secret.Items {
					refs[v.Secret.SecretName+"/"+it.Key] = true
				}
			}
		}
		for _, c := range spec.Containers {
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					refs[e.ValueFrom.SecretKeyRef.Name+"/"+e.ValueFrom.SecretKeyRef.Key] = true
				}
			}
		}
	}
	for _, o := range objs {
		if tpl := podTemplateOf(o); tpl != nil {
			pod(&tpl.Spec)
		}
		if ta, ok := o.Typed.(*TriggerAuthentication); ok {
			for _, r := range ta.Spec.SecretTargetRef {
				refs[r.Name+"/"+r.Key] = true
			}
		}
	}
	return refs
}

// TestCreateSecretsScript runs scripts/create-secrets.sh --print (no cluster needed) and
// checks that it creates every Secret key the overlays read, and nothing is left empty.
func TestCreateSecretsScript(t *testing.T) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		missing(t, "kubectl is not in PATH")
	}
	contract(t) // builds v2md when it can, for keygen
	for _, tc := range []struct {
		overlay string
		args    []string
		env     []string
	}{
		{"overlays/eks", nil, []string{
			"V2M_MYSQL_DSN=v2m:pw@tcp(db.example.com:3306)/auth?parseTime=true",
			"V2M_MONGO_URI=mongodb+srv://v2m:pw@cluster0.example.mongodb.net/",
			"V2M_SMTP_PASSWORD=smtp-pw",
		}},
		{"overlays/local", []string{"--local"}, nil},
	} {
		t.Run(tc.overlay, func(t *testing.T) {
			env := append(os.Environ(), tc.env...)
			if v2mdBin != "" {
				env = append(env, "V2MD="+v2mdBin)
			} else {
				key := filepath.Join(t.TempDir(), "jwt.pem")
				if err := os.WriteFile(key, []byte(testKeyPEM), 0o600); err != nil {
					t.Fatal(err)
				}
				env = append(env, "V2M_JWT_KEY_FILE="+key)
			}
			args := append([]string{filepath.Join(repoRoot, "scripts/create-secrets.sh"), "--print"}, tc.args...)
			cmd := exec.Command("bash", args...)
			cmd.Env = env
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("create-secrets.sh: %v\n%s", err, stderr.String())
			}
			objs, probs := Decode(out)
			for _, p := range probs {
				t.Errorf("%s", p)
			}
			have := map[string]bool{}
			for _, o := range objs {
				s, ok := o.Typed.(*corev1.Secret)
				if !ok {
					continue
				}
				if s.Namespace != "v2m" {
					t.Errorf("Secret %s is in namespace %q", s.Name, s.Namespace)
				}
				for k, v := range s.Data {
					if len(v) == 0 {
						t.Errorf("Secret %s key %s is empty", s.Name, k)
					}
					have[s.Name+"/"+k] = true
				}
				if s.Name == "v2m-auth" && !strings.Contains(string(s.Data["jwt-key"]), "PRIVATE KEY") {
					t.Errorf("v2m-auth jwt-key is not a PEM private key: %q", s.Data["jwt-key"])
				}
			}
			for ref := range secretRefs(renderDecode(t, filepath.Join(manifestsDir, tc.overlay))) {
				if !have[ref] {
					t.Errorf("the overlay reads Secret key %s, which create-secrets.sh does not create", ref)
				}
			}
		})
	}
}

// TestCreateSecretsScriptMissingValues: without the RDS DSN the script refuses, printing what
// is missing, and prints no Secret.
func TestCreateSecretsScriptMissingValues(t *testing.T) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		missing(t, "kubectl is not in PATH")
	}
	key := filepath.Join(t.TempDir(), "jwt.pem")
	if err := os.WriteFile(key, []byte(testKeyPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", filepath.Join(repoRoot, "scripts/create-secrets.sh"), "--print")
	cmd.Env = append(os.Environ(), "V2M_JWT_KEY_FILE="+key, "V2M_MONGO_URI=mongodb://m/", "V2M_SMTP_PASSWORD=x")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err == nil {
		t.Fatalf("create-secrets.sh succeeded without V2M_MYSQL_DSN:\n%s", out)
	}
	if !strings.Contains(stderr.String(), "V2M_MYSQL_DSN is not set") || strings.Contains(string(out), "kind: Secret") {
		t.Errorf("stderr %q, stdout %q", stderr.String(), out)
	}
}

// An Ed25519 private key used only when v2md keygen is not available yet.
const testKeyPEM = `-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF
-----END PRIVATE KEY-----
`

// eksctlConfig is the part of eksctl's ClusterConfig (eksctl.io/v1alpha5) that
// manifests/eksctl/cluster.yaml uses; decoding it strictly catches misspelled fields.
type eksctlConfig struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name    string            `json:"name"`
		Region  string            `json:"region"`
		Version string            `json:"version"`
		Tags    map[string]string `json:"tags"`
	} `json:"metadata"`
	VPC struct {
		CIDR string `json:"cidr"`
		NAT  struct {
			Gateway string `json:"gateway"`
		} `json:"nat"`
	} `json:"vpc"`
	IAM struct {
		WithOIDC        bool `json:"withOIDC"`
		ServiceAccounts []struct {
			Metadata struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
			WellKnownPolicies map[string]bool `json:"wellKnownPolicies"`
		} `json:"serviceAccounts"`
	} `json:"iam"`
	Addons []struct {
		Name                string   `json:"name"`
		Version             string   `json:"version"`
		ConfigurationValues string   `json:"configurationValues"`
		AttachPolicyARNs    []string `json:"attachPolicyARNs"`
		WellKnownPolicies   *struct {
			EBSCSIController bool `json:"ebsCSIController"`
		} `json:"wellKnownPolicies"`
	} `json:"addons"`
	ManagedNodeGroups []struct {
		Name              string            `json:"name"`
		InstanceType      string            `json:"instanceType"`
		InstanceTypes     []string          `json:"instanceTypes"`
		MinSize           *int              `json:"minSize"`
		DesiredCapacity   *int              `json:"desiredCapacity"`
		MaxSize           *int              `json:"maxSize"`
		VolumeSize        int               `json:"volumeSize"`
		VolumeType        string            `json:"volumeType"`
		PrivateNetworking bool              `json:"privateNetworking"`
		Labels            map[string]string `json:"labels"`
		Taints            []corev1.Taint    `json:"taints"`
		PropagateASGTags  bool              `json:"propagateASGTags"`
		IAM               struct {
			WithAddonPolicies map[string]bool `json:"withAddonPolicies"`
		} `json:"iam"`
	} `json:"managedNodeGroups"`
	CloudWatch struct {
		ClusterLogging struct {
			EnableTypes        []string `json:"enableTypes"`
			LogRetentionInDays int      `json:"logRetentionInDays"`
		} `json:"clusterLogging"`
	} `json:"cloudWatch"`
}

func TestEksctlCluster(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(manifestsDir, "eksctl/cluster.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c eksctlConfig
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		t.Fatalf("strict decode: %v", err)
	}
	if c.APIVersion != "eksctl.io/v1alpha5" || c.Kind != "ClusterConfig" {
		t.Errorf("apiVersion/kind %s %s", c.APIVersion, c.Kind)
	}
	var major, minor int
	if _, err := fmt.Sscanf(c.Metadata.Version, "%d.%d", &major, &minor); err != nil || major != 1 || minor < 33 {
		t.Errorf("EKS version %q: want 1.33 or later", c.Metadata.Version)
	}
	if !c.IAM.WithOIDC {
		t.Error("iam.withOIDC is not true")
	}
	ebs := false
	for _, a := range c.Addons {
		if a.Name == "aws-ebs-csi-driver" {
			ebs = len(a.AttachPolicyARNs) > 0 || (a.WellKnownPolicies != nil && a.WellKnownPolicies.EBSCSIController)
		}
	}
	if !ebs {
		t.Error("no aws-ebs-csi-driver addon with a service account role policy")
	}
	if len(c.ManagedNodeGroups) == 0 {
		t.Fatal("no managed node group")
	}
	for _, ng := range c.ManagedNodeGroups {
		if ng.MinSize == nil || ng.MaxSize == nil || *ng.MinSize > *ng.MaxSize {
			t.Errorf("node group %s: sizes", ng.Name)
		}
	}
	// A VPC of its own in 10.0.0.0/8, clear of Atlas's usual peering range.
	_, vpc, err := net.ParseCIDR(c.VPC.CIDR)
	_, atlas, _ := net.ParseCIDR("192.168.248.0/21")
	if ones, _ := vpc.Mask.Size(); err != nil || !strings.HasPrefix(c.VPC.CIDR, "10.") || ones != 16 || vpc.Contains(atlas.IP) || atlas.Contains(vpc.IP) {
		t.Errorf("vpc.cidr %q: want a 10.x.0.0/16 that does not overlap 192.168.248.0/21", c.VPC.CIDR)
	}
	if c.CloudWatch.ClusterLogging.LogRetentionInDays <= 0 {
		t.Error("cloudWatch.clusterLogging.logRetentionInDays is not set: logs are kept forever")
	}
	sas := map[string]bool{}
	for _, sa := range c.IAM.ServiceAccounts {
		for p, on := range sa.WellKnownPolicies {
			sas[p] = sas[p] || on
		}
	}
	for _, p := range []string{"awsLoadBalancerController", "certManager", "autoScaler"} {
		if !sas[p] {
			t.Errorf("no IAM service account with the well-known policy %s", p)
		}
	}
	// Converters on their own compute-optimised, tainted, autoscaled node group, and the
	// Cluster Autoscaler lets their grace period run.
	var convertPool bool
	for _, ng := range c.ManagedNodeGroups {
		if ng.Labels["v2m.io/pool"] != "convert" {
			continue
		}
		convertPool = true
		for _, it := range ng.InstanceTypes {
			if !strings.HasPrefix(it, "c") {
				t.Errorf("convert node group instance type %s is not compute-optimised", it)
			}
		}
		if len(ng.Taints) == 0 || !ng.PropagateASGTags || *ng.MaxSize <= *ng.MinSize {
			t.Errorf("convert node group: taint %v, propagateASGTags %v, sizes %d-%d", ng.Taints, ng.PropagateASGTags, *ng.MinSize, *ng.MaxSize)
		}
	}
	if !convertPool {
		t.Error("no node group labelled v2m.io/pool: convert")
	}
	var ca struct {
		AutoDiscovery struct {
			ClusterName string `json:"clusterName"`
		} `json:"autoDiscovery"`
		AWSRegion string `json:"awsRegion"`
		RBAC      struct {
			ServiceAccount struct {
				Create bool   `json:"create"`
				Name   string `json:"name"`
			} `json:"serviceAccount"`
		} `json:"rbac"`
		ExtraArgs map[string]string `json:"extraArgs"`
	}
	caData, err := os.ReadFile(filepath.Join(manifestsDir, "eksctl/cluster-autoscaler-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(caData, &ca); err != nil {
		t.Fatalf("cluster-autoscaler-values.yaml: %v", err)
	}
	if ca.AutoDiscovery.ClusterName != c.Metadata.Name || ca.AWSRegion != c.Metadata.Region {
		t.Errorf("the Cluster Autoscaler discovers %s in %s, the cluster is %s in %s", ca.AutoDiscovery.ClusterName, ca.AWSRegion, c.Metadata.Name, c.Metadata.Region)
	}
	maxGrace, _ := strconv.Atoi(ca.ExtraArgs["max-graceful-termination-sec"])
	for _, o := range renderDecode(t, filepath.Join(manifestsDir, "overlays/eks")) {
		if d, ok := o.Typed.(*appsv1.Deployment); ok && d.Name == "convert" {
			if g := d.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || int64(maxGrace) < *g {
				t.Errorf("Cluster Autoscaler max-graceful-termination-sec %d is below convert's terminationGracePeriodSeconds %v", maxGrace, g)
			}
			if d.Spec.Template.Spec.NodeSelector["v2m.io/pool"] != "convert" || len(d.Spec.Template.Spec.Tolerations) == 0 {
				t.Error("convert does not run on the convert node group")
			}
		}
	}
	// The gp3 StorageClass of the eks overlay uses the driver this addon installs.
	for _, o := range renderDecode(t, filepath.Join(manifestsDir, "overlays/eks")) {
		if sc, ok := o.Typed.(*storagev1.StorageClass); ok && (sc.Provisioner != "ebs.csi.aws.com" || sc.Parameters["type"] != "gp3") {
			t.Errorf("StorageClass %s: %s %v", sc.Name, sc.Provisioner, sc.Parameters)
		}
	}
}

// TestContractFixture keeps the fixture honest: it must decode, and list every server
// subcommand with /healthz and /readyz on its listen port and a --metrics-addr. When the real v2md builds, the fixture's
// subcommands and settings must match it, so that it never lags behind silently.
func TestContractFixture(t *testing.T) {
	f, err := os.Open("testdata/describe.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fix, err := ReadContract(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"auth", "gateway", "convert", "notify"} {
		s := fix.Subcommand(name)
		if s == nil {
			t.Fatalf("fixture has no %s", name)
		}
		for _, p := range []string{"/healthz", "/readyz"} {
			if !s.Serves(p) {
				t.Errorf("fixture %s does not serve %s", name, p)
			}
		}
		if s.Serves("/metrics") || s.ByName("metrics-addr") == nil {
			t.Errorf("fixture %s: metrics must be on --metrics-addr, not on the listen port", name)
		}
	}
	real := contract(t)
	if v2mdBin == "" {
		t.Skip("v2md does not build yet: nothing to compare the fixture with")
	}
	for _, name := range []string{"auth", "gateway", "convert", "notify"} {
		rs := real.Subcommand(name)
		if rs == nil {
			t.Errorf("v2md describe has no %s", name)
			continue
		}
		const refresh = "refresh it: go run ./cmd/v2md describe > manifests/validate/testdata/describe.json"
		for _, st := range rs.Settings {
			fs := fix.Subcommand(name).ByName(st.Name)
			switch {
			case fs == nil:
				t.Errorf("fixture lacks %s --%s (%s)", name, st.Name, refresh)
			case fs.Default != st.Default:
				t.Errorf("fixture %s --%s defaults to %q, v2md to %q (%s)", name, st.Name, fs.Default, st.Default, refresh)
			}
		}
		for _, st := range fix.Subcommand(name).Settings {
			if rs.ByName(st.Name) == nil {
				t.Errorf("fixture has %s --%s, which v2md does not (%s)", name, st.Name, refresh)
			}
		}
	}
}

// TestDockerfile checks the image contract the manifests rely on: static build, user 65532,
// ENTRYPOINT v2md, ffmpeg, TMPDIR on /tmp/v2m, selectable base; and that .dockerignore keeps
// the sources the build needs.
func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(data)
	for _, want := range []string{
		"ARG BASE_IMAGE=debian:bookworm-slim", "FROM ${BASE_IMAGE}", "golang:1.26", "CGO_ENABLED=0", "-trimpath",
		"-s -w", "github.com/v2m/v2m/internal/version.Version=${VERSION}", "./cmd/v2md", "./cmd/v2m",
		"ffmpeg", "USER 65532:65532", "ENV TMPDIR=/tmp/v2m", `ENTRYPOINT ["v2md"]`,
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	ign, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(ign), "\n") {
		switch strings.TrimSpace(line) {
		case "go.mod", "go.sum", "cmd", "pkg", "internal", "*", "**/*.go":
			t.Errorf(".dockerignore excludes %q, which the build needs", line)
		}
	}
}

// fakeKubectl answers the script's lookups from a state directory (STATE/SECRET/KEY files
// and STATE/SECRET/rotated-at), keeps what it is asked to apply in STATE/applied.yaml, and
// hands everything else (create --dry-run, annotate --local) to the real kubectl.
const fakeKubectl = `#!/usr/bin/env bash
set -e
S=$FAKE_KUBECTL_STATE
args=("$@")
[ "${args[0]}" = -n ] && args=("${args[@]:2}")
case "${args[0]} ${args[1]}" in
"get secret")
	jp=${args[4]}
	case "$jp" in
	*annotations*) [ -f "$S/${args[2]}/rotated-at" ] || exit 1; cat "$S/${args[2]}/rotated-at" ;;
	*) key=${jp#jsonpath=\{.data.}; key=${key%\}}; [ -f "$S/${args[2]}/$key" ] || exit 1; base64 -w0 <"$S/${args[2]}/$key" ;;
	esac ;;
"get configmap") exit 1 ;;
"apply -f") if [ "${args[2]}" = - ]; then cat >/dev/null; else cp "${args[2]}" "$S/applied.yaml"; fi ;;
*) exec "$REAL_KUBECTL" "$@" ;;
esac
`

// publicPEM returns the PKIX public key PEM of an Ed25519 PKCS #8 private key PEM.
func publicPEM(t *testing.T, priv []byte) string {
	t.Helper()
	block, _ := pem.Decode(priv)
	if block == nil {
		t.Fatalf("not a PEM key: %q", priv)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(k.(ed25519.PrivateKey).Public())
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// TestCreateSecretsRotateJWT runs create-secrets.sh against a fake cluster: the first run
// stores the key's public half as jwt-previous-key; --rotate-jwt makes a new key, keeps the
// old one's public half and stamps the time; a second rotation within the token TTL is
// refused unless --force; a plain run keeps all of it.
func TestCreateSecretsRotateJWT(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		missing(t, "kubectl is not in PATH")
	}
	if _, err := exec.LookPath("openssl"); err != nil {
		missing(t, "openssl is not in PATH")
	}
	contract(t)
	if v2mdBin == "" {
		t.Skip("v2md does not build: no keygen")
	}
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	fake := filepath.Join(dir, "kubectl")
	if err := os.WriteFile(fake, []byte(fakeKubectl), 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (secret *corev1.Secret, stderr string, err error) {
		t.Helper()
		os.Remove(filepath.Join(state, "applied.yaml"))
		cmd := exec.Command("bash", append([]string{filepath.Join(repoRoot, "scripts/create-secrets.sh")}, args...)...)
		cmd.Env = append(os.Environ(), "KUBECTL="+fake, "REAL_KUBECTL="+kubectl, "FAKE_KUBECTL_STATE="+state, "V2MD="+v2mdBin,
			"V2M_MYSQL_DSN=v2m:pw@tcp(db:3306)/auth", "V2M_MONGO_URI=mongodb://m/", "V2M_SMTP_PASSWORD=x", "V2M_TOKEN_TTL=1h30m")
		var errb strings.Builder
		cmd.Stderr = &errb
		if err := cmd.Run(); err != nil {
			return nil, errb.String(), err
		}
		data, err := os.ReadFile(filepath.Join(state, "applied.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		objs, probs := Decode(data)
		for _, p := range probs {
			t.Errorf("%s", p)
		}
		for _, o := range objs {
			s, ok := o.Typed.(*corev1.Secret)
			if !ok {
				continue
			}
			// The cluster now holds it.
			sd := filepath.Join(state, s.Name)
			if err := os.MkdirAll(sd, 0o700); err != nil {
				t.Fatal(err)
			}
			for k, v := range s.Data {
				if err := os.WriteFile(filepath.Join(sd, k), v, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if at := s.Annotations["v2m.io/jwt-rotated-at"]; at != "" {
				if err := os.WriteFile(filepath.Join(sd, "rotated-at"), []byte(at), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if s.Name == "v2m-auth" {
				secret = s
			}
		}
		if secret == nil {
			t.Fatal("no v2m-auth applied")
		}
		return secret, errb.String(), nil
	}
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}

	first, _, err := run()
	if err != nil {
		t.Fatal(err)
	}
	key0 := first.Data["jwt-key"]
	if got := string(first.Data["jwt-previous-key"]); got != publicPEM(t, key0) {
		t.Fatalf("before any rotation jwt-previous-key is %q, want the key's public half", got)
	}
	if _, ok := first.Annotations["v2m.io/jwt-rotated-at"]; ok {
		t.Error("rotated-at is set before any rotation")
	}

	rotated, stderr, err := run("--rotate-jwt")
	if err != nil {
		t.Fatalf("--rotate-jwt: %v\n%s", err, stderr)
	}
	key1 := rotated.Data["jwt-key"]
	if string(key1) == string(key0) || !strings.Contains(string(key1), "PRIVATE KEY") {
		t.Fatal("--rotate-jwt did not make a new private key")
	}
	if got := string(rotated.Data["jwt-previous-key"]); got != publicPEM(t, key0) {
		t.Fatalf("after --rotate-jwt jwt-previous-key is %q, want the old key's public half", got)
	}
	at, err := strconv.ParseInt(rotated.Annotations["v2m.io/jwt-rotated-at"], 10, 64)
	if err != nil || time.Since(time.Unix(at, 0)).Abs() > time.Minute {
		t.Fatalf("rotated-at %q, want now", rotated.Annotations["v2m.io/jwt-rotated-at"])
	}

	_, stderr, err = run("--rotate-jwt")
	if err == nil || !strings.Contains(stderr, "Rotating again now would refuse them") || !strings.Contains(stderr, "token TTL 1h30m") {
		t.Fatalf("a second rotation within the TTL: err %v, stderr %q", err, stderr)
	}

	forced, stderr, err := run("--rotate-jwt", "--force")
	if err != nil {
		t.Fatalf("--rotate-jwt --force: %v\n%s", err, stderr)
	}
	if string(forced.Data["jwt-previous-key"]) != publicPEM(t, key1) || string(forced.Data["jwt-key"]) == string(key1) {
		t.Fatal("--rotate-jwt --force did not rotate")
	}

	kept, _, err := run()
	if err != nil {
		t.Fatal(err)
	}
	if string(kept.Data["jwt-key"]) != string(forced.Data["jwt-key"]) || string(kept.Data["jwt-previous-key"]) != publicPEM(t, key1) ||
		kept.Annotations["v2m.io/jwt-rotated-at"] != forced.Annotations["v2m.io/jwt-rotated-at"] {
		t.Error("a plain run changed the keys or the rotation time")
	}
}

// TestNetworkFlows: in the eks and local overlays, the NetworkPolicies allow every flow of
// manifests/flows.yaml and nothing else between its endpoints.
func TestNetworkFlows(t *testing.T) {
	fs, err := ReadFlows(filepath.Join(manifestsDir, "flows.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ov := range []string{"eks", "local"} {
		t.Run(ov, func(t *testing.T) {
			for _, p := range fs.CheckFlows(renderDecode(t, filepath.Join(manifestsDir, "overlays", ov)), ov) {
				t.Errorf("%s", p)
			}
		})
	}
}

// TestNetworkFlowsBroken: a policy that allows too much, or too little, fails the flow check.
func TestNetworkFlowsBroken(t *testing.T) {
	fs, err := ReadFlows(filepath.Join(manifestsDir, "flows.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ dir, want string }{
		{"netpol-dns-anywhere", "unneeded flow gateway -> internet UDP/53 is allowed"},
		{"netpol-blocked", "needed flow gateway -> auth TCP/8081 is blocked"},
		{"netpol-mongodb-27017", "needed flow convert -> atlas-privatelink TCP/65535 is blocked"},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			probs := fs.CheckFlows(renderDecode(t, filepath.Join("testdata/broken", tc.dir)), "eks")
			for _, p := range probs {
				if strings.Contains(p.Msg, tc.want) {
					t.Logf("caught: %s", p)
					return
				}
			}
			t.Errorf("no problem containing %q; got %v", tc.want, probs)
		})
	}
}

// TestEKSImagesByDigest: the eks overlay pins every image by digest; an image by tag fails.
func TestEKSImagesByDigest(t *testing.T) {
	for _, p := range DigestProblems(renderDecode(t, filepath.Join(manifestsDir, "overlays/eks"))) {
		t.Errorf("%s", p)
	}
	probs := DigestProblems(renderDecode(t, "testdata/broken/eks-by-tag"))
	if len(probs) == 0 || !strings.Contains(probs[0].Msg, "is not pinned by digest") {
		t.Errorf("an image by tag passed: %v", probs)
	}
}

// TestEKSBroker: three broker nodes on EKS, gp3 volumes, the absolute watermark.
func TestEKSBroker(t *testing.T) {
	for _, o := range renderDecode(t, filepath.Join(manifestsDir, "overlays/eks")) {
		rc, ok := o.Typed.(*rabbitmqv1beta1.RabbitmqCluster)
		if !ok {
			continue
		}
		if rc.Spec.Replicas == nil || *rc.Spec.Replicas != 3 {
			t.Errorf("RabbitmqCluster replicas %v, want 3", rc.Spec.Replicas)
		}
		if rc.Spec.Persistence.StorageClassName == nil || *rc.Spec.Persistence.StorageClassName != "gp3" {
			t.Errorf("RabbitmqCluster storage class %v, want gp3", rc.Spec.Persistence.StorageClassName)
		}
		return
	}
	t.Fatal("the eks overlay has no RabbitmqCluster")
}

// TestClusterIssuer: the ClusterIssuer applied next to the eks overlay solves DNS-01 in
// Route 53 (no solver pod needing inbound traffic), and the Certificate names it.
func TestClusterIssuer(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(manifestsDir, "overlays/eks/cluster-issuer.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	objs, probs := Decode(data)
	for _, p := range probs {
		t.Fatalf("%s", p)
	}
	ci, ok := objs[0].Typed.(*ClusterIssuer)
	if !ok {
		t.Fatalf("cluster-issuer.yaml holds a %T", objs[0].Typed)
	}
	for _, s := range ci.Spec.ACME.Solvers {
		if s.HTTP01 != nil || s.DNS01 == nil || s.DNS01.Route53 == nil {
			t.Errorf("solver %+v: want DNS-01 with Route 53 only", s)
		}
	}
	found := false
	for _, o := range renderDecode(t, filepath.Join(manifestsDir, "overlays/eks")) {
		if c, ok := o.Typed.(*Certificate); ok {
			found = true
			if c.Spec.IssuerRef.Kind != "ClusterIssuer" || c.Spec.IssuerRef.Name != ci.Name {
				t.Errorf("Certificate %s is issued by %+v, not ClusterIssuer %s", c.Name, c.Spec.IssuerRef, ci.Name)
			}
		}
	}
	if !found {
		t.Error("the eks overlay has no Certificate")
	}
}
