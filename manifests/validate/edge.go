package validate

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	rabbitmqv1beta1 "github.com/rabbitmq/cluster-operator/v2/api/v1beta1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// A publicPath is a path the edge may route to the gateway, and nothing else: /v1, the
// tutorial's routes and the web page (exactly / and its assets).
type publicPath struct {
	typ, value string
}

var publicPaths = []publicPath{
	{"PathPrefix", "/v1"}, {"PathPrefix", "/assets"}, {"Exact", "/"},
	{"Exact", "/upload"}, {"Exact", "/download"}, {"Exact", "/validate"},
	{"Exact", "/v1/tokens"}, {"Exact", "/v1/users"}, {"Exact", "/login"}, {"Exact", "/registration"},
}

// loginPaths are the routes that create tokens or accounts: the edge rate-limits them.
var loginPaths = map[string]bool{"/v1/tokens": true, "/v1/users": true, "/login": true, "/registration": true}

// uploadPaths carry request bodies as large as an upload.
var uploadPaths = map[string]bool{"/v1": true, "/upload": true}

// minStreamTimeout is the least read/send timeout at the edge: long-polls and event streams
// stay open that long between two bytes.
const minStreamTimeout = 10 * time.Minute

// edge checks the Gateway API objects and NGINX Gateway Fabric's policies.
func (ck *checker) edge() {
	gateways := map[string]*gatewayv1.Gateway{}
	certs := map[string]*Certificate{}
	for _, o := range ck.objs {
		switch t := o.Typed.(type) {
		case *gatewayv1.Gateway:
			gateways[o.Namespace+"/"+o.Name] = t
		case *Certificate:
			certs[o.Namespace+"/"+t.Spec.SecretName] = t
		}
	}
	for _, o := range ck.objs {
		switch t := o.Typed.(type) {
		case *gatewayv1.Gateway:
			ck.gateway(o, t, certs)
		case *gatewayv1.HTTPRoute:
			ck.route(o, t, gateways)
		case *NginxProxy:
			ck.clientIP(o, t, gateways)
		}
	}
}

func (ck *checker) gateway(o Object, gw *gatewayv1.Gateway, certs map[string]*Certificate) {
	for _, l := range gw.Spec.Listeners {
		if l.Protocol != gatewayv1.HTTPSProtocolType {
			continue
		}
		if l.TLS == nil || len(l.TLS.CertificateRefs) == 0 {
			ck.add(o.ID(), "tls", "HTTPS listener %s has no certificate", l.Name)
			continue
		}
		for _, ref := range l.TLS.CertificateRefs {
			ns := o.Namespace
			if ref.Namespace != nil {
				ns = string(*ref.Namespace)
			}
			c, ok := certs[ns+"/"+string(ref.Name)]
			if !ok {
				ck.add(o.ID(), "tls", "listener %s: Secret %s is not issued by a cert-manager Certificate in the manifests", l.Name, ref.Name)
				continue
			}
			if l.Hostname != nil && !contains(c.Spec.DNSNames, string(*l.Hostname)) {
				ck.add(o.ID(), "tls", "listener %s: host %s is not among Certificate %s's dnsNames %v", l.Name, *l.Hostname, c.Name, c.Spec.DNSNames)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// route checks one HTTPRoute: its parents, its paths, its backends and the policies that
// give it a body limit, streaming, timeouts and rate limits.
func (ck *checker) route(o Object, r *gatewayv1.HTTPRoute, gateways map[string]*gatewayv1.Gateway) {
	for _, p := range r.Spec.ParentRefs {
		gw := gateways[o.Namespace+"/"+string(p.Name)]
		if gw == nil {
			ck.add(o.ID(), "edge", "parent Gateway %s is not in the manifests", p.Name)
			continue
		}
		if p.SectionName != nil {
			found := false
			for _, l := range gw.Spec.Listeners {
				found = found || l.Name == *p.SectionName
			}
			if !found {
				ck.add(o.ID(), "edge", "Gateway %s has no listener %s", p.Name, *p.SectionName)
			}
		}
	}
	for i, rule := range r.Spec.Rules {
		redirect := false
		var snippets []*SnippetsFilter
		for _, f := range rule.Filters {
			switch {
			case f.Type == gatewayv1.HTTPRouteFilterRequestRedirect:
				redirect = true
			case f.Type == gatewayv1.HTTPRouteFilterExtensionRef && f.ExtensionRef != nil && f.ExtensionRef.Kind == "SnippetsFilter":
				so := ck.find("SnippetsFilter", o.Namespace, string(f.ExtensionRef.Name))
				if so == nil {
					ck.add(o.ID(), "edge", "rule %d: SnippetsFilter %s is not in the manifests", i, f.ExtensionRef.Name)
					continue
				}
				snippets = append(snippets, so.Typed.(*SnippetsFilter))
			}
		}
		if redirect {
			if len(rule.BackendRefs) > 0 {
				ck.add(o.ID(), "edge", "rule %d redirects and has backends", i)
			}
			continue
		}
		uploads, logins := false, false
		for _, m := range rule.Matches {
			typ, val := "PathPrefix", "/"
			if m.Path != nil {
				if m.Path.Type != nil {
					typ = string(*m.Path.Type)
				}
				if m.Path.Value != nil {
					val = *m.Path.Value
				}
			}
			if !isPublicPath(typ, val) {
				ck.add(o.ID(), "edge", "rule %d routes %s %s: only /v1, the tutorial's routes, / and /assets are public (never /metrics, /readyz, /healthz)", i, typ, val)
			}
			uploads = uploads || uploadPaths[val]
			logins = logins || (typ == "Exact" && loginPaths[val])
		}
		for _, b := range rule.BackendRefs {
			ck.backend(o, i, b)
		}
		if uploads {
			ck.streaming(o, i, snippets)
		}
		if logins {
			ck.rateLimited(o)
		}
		if uploads || logins {
			ck.bodyLimit(o, uploads)
			ck.unbuffered(o)
		}
	}
}

func isPublicPath(typ, val string) bool {
	for _, p := range publicPaths {
		if p.typ == typ && p.value == val {
			return true
		}
	}
	return false
}

func (ck *checker) backend(o Object, rule int, b gatewayv1.HTTPBackendRef) {
	if b.Kind != nil && *b.Kind != "Service" {
		ck.add(o.ID(), "edge", "rule %d: backend %s is a %s, not a Service", rule, b.Name, *b.Kind)
		return
	}
	so := ck.find("Service", o.Namespace, string(b.Name))
	if so == nil {
		ck.add(o.ID(), "edge", "rule %d: backend Service %q is not in the manifests", rule, b.Name)
		return
	}
	svc := so.Typed.(*corev1.Service)
	if svc.Spec.Selector["app.kubernetes.io/component"] != "gateway" {
		ck.add(o.ID(), "edge", "rule %d: backend Service %q is not the gateway: only the gateway is public", rule, b.Name)
	}
	ok := false
	for _, sp := range svc.Spec.Ports {
		ok = ok || (b.Port != nil && sp.Port == int32(*b.Port))
	}
	if !ok {
		ck.add(o.ID(), "edge", "rule %d: backend port %v is not a port of Service %q", rule, b.Port, b.Name)
	}
}

// streaming: the rule's SnippetsFilter turns request buffering off and allows long reads.
func (ck *checker) streaming(o Object, rule int, snippets []*SnippetsFilter) {
	off := false
	timeouts := map[string]time.Duration{}
	for _, f := range snippets {
		if v, ok := f.directive("http.server.location", "proxy_request_buffering"); ok && v == "off" {
			off = true
		}
		for _, d := range []string{"proxy_read_timeout", "proxy_send_timeout"} {
			if v, ok := f.directive("http.server.location", d); ok {
				if t, err := nginxDuration(v); err == nil {
					timeouts[d] = t
				}
			}
		}
	}
	if !off {
		ck.add(o.ID(), "edge-streaming", "rule %d carries uploads but no SnippetsFilter sets proxy_request_buffering off: nginx would spool every upload before the gateway sees a byte", rule)
	}
	for _, d := range []string{"proxy_read_timeout", "proxy_send_timeout"} {
		if timeouts[d] < minStreamTimeout {
			ck.add(o.ID(), "edge-streaming", "rule %d: %s is %v, below %v: long-polls and event streams would be cut", rule, d, timeouts[d], minStreamTimeout)
		}
	}
}

var nginxDurationRE = regexp.MustCompile(`^(\d+)(ms|s|m|h|d)?$`)

func nginxDuration(v string) (time.Duration, error) {
	m := nginxDurationRE.FindStringSubmatch(strings.TrimSpace(v))
	if m == nil {
		return 0, fmt.Errorf("%q is not an NGINX time", v)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	unit := map[string]time.Duration{"ms": time.Millisecond, "": time.Second, "s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}[m[2]]
	return time.Duration(n) * unit, nil
}

// targets reports whether a policy's targets include the route.
func targets(ts []ngfTarget, route string) bool {
	for _, t := range ts {
		if t.Kind == "HTTPRoute" && t.Name == route {
			return true
		}
	}
	return false
}

// bodyLimit: a ClientSettingsPolicy gives the route a finite body limit; for uploads equal to
// the gateway's --max-upload-size.
func (ck *checker) bodyLimit(o Object, uploads bool) {
	var limit string
	for _, p := range ck.objs {
		if c, ok := p.Typed.(*ClientSettingsPolicy); ok && p.Namespace == o.Namespace && targets([]ngfTarget{c.Spec.TargetRef}, o.Name) &&
			c.Spec.Body != nil && c.Spec.Body.MaxSize != nil {
			limit = *c.Spec.Body.MaxSize
		}
	}
	size, err := nginxSize(limit)
	switch {
	case limit == "":
		ck.add(o.ID(), "edge-body", "no ClientSettingsPolicy sets body.maxSize for this route: nginx's default (1m) would refuse uploads")
		return
	case err != nil:
		ck.add(o.ID(), "edge-body", "body.maxSize: %v", err)
		return
	case size == 0:
		ck.add(o.ID(), "edge-body", "body.maxSize is 0 (no limit): the edge must bound bodies")
		return
	}
	if !uploads {
		return
	}
	v, ok := ck.setting("gateway", "max-upload-size")
	if !ok {
		return
	}
	want, err := parseSize(v)
	if err != nil {
		ck.add(o.ID(), "edge-body", "the gateway's max-upload-size %q: %v", v, err)
	} else if size != want {
		ck.add(o.ID(), "edge-body", "body.maxSize %s (%d bytes) differs from the gateway's max-upload-size %s (%d bytes)", limit, size, v, want)
	}
}

func (ck *checker) unbuffered(o Object) {
	for _, p := range ck.objs {
		if s, ok := p.Typed.(*ProxySettingsPolicy); ok && p.Namespace == o.Namespace && targets(s.Spec.TargetRefs, o.Name) &&
			s.Spec.Buffering != nil && s.Spec.Buffering.Disable != nil && *s.Spec.Buffering.Disable {
			return
		}
	}
	ck.add(o.ID(), "edge-streaming", "no ProxySettingsPolicy disables response buffering for this route: event streams and downloads would stall in nginx")
}

func (ck *checker) rateLimited(o Object) {
	for _, p := range ck.objs {
		rl, ok := p.Typed.(*RateLimitPolicy)
		if !ok || p.Namespace != o.Namespace || !targets(rl.Spec.TargetRefs, o.Name) || rl.Spec.RateLimit == nil || rl.Spec.RateLimit.Local == nil {
			continue
		}
		for _, r := range rl.Spec.RateLimit.Local.Rules {
			if (r.Key == "$binary_remote_addr" || r.Key == "$remote_addr") && (r.DryRun == nil || !*r.DryRun) {
				return
			}
		}
	}
	ck.add(o.ID(), "edge-ratelimit", "the route serves logins or registrations but no RateLimitPolicy limits it per client address")
}

// clientIP: nginx takes the client's address from the PROXY protocol or a trusted header of
// the load balancer only, never from whoever connects.
func (ck *checker) clientIP(o Object, np *NginxProxy, gateways map[string]*gatewayv1.Gateway) {
	r := np.Spec.RewriteClientIP
	if r == nil || r.Mode == nil {
		ck.add(o.ID(), "client-ip", "no rewriteClientIP: behind the NLB every client would have the NLB's address")
		return
	}
	for _, a := range r.TrustedAddresses {
		if _, n, err := net.ParseCIDR(a.Value); a.Type == "CIDR" && (err != nil || maskOnes(n) == 0) {
			ck.add(o.ID(), "client-ip", "trusted address %s: trusting everyone lets any client set its address", a.Value)
		}
	}
	for _, gw := range gateways {
		ref := gw.Spec.Infrastructure
		if ref == nil || ref.ParametersRef == nil || string(ref.ParametersRef.Name) != o.Name || gw.Namespace != o.Namespace {
			continue
		}
		pp := ref.Annotations["service.beta.kubernetes.io/aws-load-balancer-proxy-protocol"] == "*"
		switch {
		case *r.Mode == "ProxyProtocol" && !pp:
			ck.add(o.ID(), "client-ip", "mode ProxyProtocol but Gateway %s's load balancer does not send it (annotation aws-load-balancer-proxy-protocol)", gw.Name)
		case *r.Mode == "XForwardedFor" && pp:
			ck.add(o.ID(), "client-ip", "mode XForwardedFor behind an NLB that sends the PROXY protocol: the header is the client's to forge")
		case *r.Mode == "XForwardedFor":
			ck.add(o.ID(), "client-ip", "mode XForwardedFor behind an L4 NLB: the header comes from the client, not the load balancer")
		}
	}
}

func maskOnes(n *net.IPNet) int {
	ones, _ := n.Mask.Size()
	return ones
}

// nginxSize parses an NGINX size (digits, optional k, m or g).
func nginxSize(v string) (int64, error) {
	if !ngfSize.MatchString(v) {
		return 0, fmt.Errorf("%q is not an NGINX size", v)
	}
	mult := map[byte]int64{'k': 1 << 10, 'm': 1 << 20, 'g': 1 << 30}[v[len(v)-1]]
	if mult == 0 {
		mult = 1
	} else {
		v = v[:len(v)-1]
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n * mult, err
}

// parseSize parses a v2md size, as pkg/wire.ParseSize does: a number with KiB, MiB, GiB,
// TiB (or K, M, G) or B.
func parseSize(v string) (int64, error) {
	s := strings.TrimSpace(v)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size", v)
	}
	return n * mult, nil
}

// ----------------------------------------------------------------- broker

var rabbitConf = regexp.MustCompile(`(?m)^\s*([a-z_.0-9]+)\s*=\s*(\S+)\s*$`)

// broker checks the RabbitmqCluster: a supported 4.x image, an odd number of nodes, an
// absolute memory watermark below the container's limit, a consumer_timeout above the
// converters' job timeout, a PDB, and queues of one type, quorum on a cluster.
func (ck *checker) broker() {
	for _, o := range ck.objs {
		rc, ok := o.Typed.(*rabbitmqv1beta1.RabbitmqCluster)
		if !ok {
			continue
		}
		id := o.ID()
		_, tag, digest := splitImage(rc.Spec.Image)
		major := 0
		if i := strings.IndexByte(tag, '.'); i > 0 {
			major, _ = strconv.Atoi(tag[:i])
		}
		switch {
		case rc.Spec.Image == "":
			ck.add(id, "broker", "no image: the operator's default changes with its version")
		case digest == "" && tag == "":
			ck.add(id, "broker", "image %q has no tag", rc.Spec.Image)
		case digest == "" && major < 4:
			ck.add(id, "broker", "image %s is RabbitMQ %s: use 4.x (3.13 is out of community support since 2024-09)", rc.Spec.Image, tag)
		}
		replicas := int32(1)
		if rc.Spec.Replicas != nil {
			replicas = *rc.Spec.Replicas
		}
		if replicas%2 == 0 {
			ck.add(id, "broker", "%d replicas: an even cluster has no majority after a partition; use 1, 3 or 5", replicas)
		}
		conf := map[string]string{}
		for _, m := range rabbitConf.FindAllStringSubmatch(rc.Spec.Rabbitmq.AdditionalConfig, -1) {
			conf[m[1]] = m[2]
		}
		if _, rel := conf["vm_memory_high_watermark.relative"]; rel {
			ck.add(id, "broker", "vm_memory_high_watermark.relative is computed from the node's RAM, not the container's limit: use .absolute")
		}
		var limit int64
		if rc.Spec.Resources != nil {
			if q, ok := rc.Spec.Resources.Limits[corev1.ResourceMemory]; ok {
				limit = q.Value()
			}
		}
		if abs, ok := conf["vm_memory_high_watermark.absolute"]; !ok {
			ck.add(id, "broker", "no vm_memory_high_watermark.absolute: the broker must block publishers before the kernel OOM-kills it")
		} else if n, err := parseSize(abs); err != nil {
			ck.add(id, "broker", "vm_memory_high_watermark.absolute %s: %v", abs, err)
		} else if limit == 0 || n >= limit*8/10 {
			ck.add(id, "broker", "vm_memory_high_watermark.absolute %s is not below 80%% of the memory limit (%d bytes)", abs, limit)
		}
		if jt, ok := ck.setting("convert", "job-timeout"); ok {
			d, _ := time.ParseDuration(jt)
			ms, err := strconv.ParseInt(conf["consumer_timeout"], 10, 64)
			if err != nil || time.Duration(ms)*time.Millisecond <= d {
				ck.add(id, "broker", "consumer_timeout %q ms is not above convert's job-timeout %s: the broker would requeue running conversions", conf["consumer_timeout"], jt)
			}
		}
		ck.pdbFor(o, map[string]string{"app.kubernetes.io/name": o.Name}, replicas)
		ck.queueTypes(id, replicas)
	}
}

// pdbFor checks that a PDB selects pods labelled podLabels (a workload the operator makes).
func (ck *checker) pdbFor(o Object, podLabels map[string]string, replicas int32) {
	for _, p := range ck.objs {
		pdb, ok := p.Typed.(*policyv1.PodDisruptionBudget)
		if !ok || p.Namespace != o.Namespace {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err == nil && sel.Matches(labels.Set(podLabels)) {
			return
		}
	}
	if replicas > 1 {
		ck.add(o.ID(), "pdb", "%d nodes but no PodDisruptionBudget selects its pods: a drain could stop a majority", replicas)
	}
}

func (ck *checker) queueTypes(id string, replicas int32) {
	types := map[string][]string{}
	for _, sub := range []string{"gateway", "convert", "notify"} {
		if v, ok := ck.setting(sub, "amqp-queue-type"); ok {
			types[v] = append(types[v], sub)
		}
	}
	if len(types) > 1 {
		ck.add(id, "broker", "the services declare different queue types %v: the second declaration of a queue fails", types)
	}
	if c := types["classic"]; replicas > 1 && len(c) > 0 {
		ck.add(id, "broker", "%v declare classic queues on a %d-node cluster: a classic queue lives on one node; set V2MD_AMQP_QUEUE_TYPE=quorum", c, replicas)
	}
}

// ----------------------------------------------------------------- operations

// operations checks what rollouts, drains and scaling need: Pod Security pinned, preStop
// hooks, converters that no node autoscaler evicts and whose scaler sees running jobs, zone
// spread, and PodMonitors that name real ports.
func (ck *checker) operations() {
	for _, o := range ck.objs {
		switch t := o.Typed.(type) {
		case *corev1.Namespace:
			ck.podSecurity(o, t)
		case *appsv1.Deployment:
			ck.lifecycle(o, t)
		case *ScaledObject:
			ck.kedaRabbitMQ(o, t)
		case *monitoringv1.PodMonitor:
			ck.podMonitor(o, t)
		}
	}
}

func (ck *checker) podSecurity(o Object, ns *corev1.Namespace) {
	for _, mode := range []string{"enforce", "warn", "audit"} {
		l := "pod-security.kubernetes.io/" + mode
		if ns.Labels[l] != "restricted" {
			ck.add(o.ID(), "psa", "%s is %q, want restricted", l, ns.Labels[l])
		}
		if v := ns.Labels[l+"-version"]; !regexp.MustCompile(`^v1\.\d+$`).MatchString(v) {
			ck.add(o.ID(), "psa", "%s-version is %q: pin it to a minor version (v1.33), not latest", l, v)
		}
	}
}

func (ck *checker) lifecycle(o Object, d *appsv1.Deployment) {
	tpl := &d.Spec.Template
	comp := tpl.Labels["app.kubernetes.io/component"]
	if tpl.Labels["app.kubernetes.io/name"] != "v2md" {
		return
	}
	ctr := &tpl.Spec.Containers[0]
	switch comp {
	case "gateway":
		if ctr.Lifecycle == nil || ctr.Lifecycle.PreStop == nil {
			ck.add(o.ID(), "lifecycle", "no preStop: the pod stops before the edge stops sending to it (502s on every rollout)")
		}
	case "convert":
		if ctr.Lifecycle == nil || ctr.Lifecycle.PreStop == nil {
			ck.add(o.ID(), "lifecycle", "no preStop that stops taking work")
		}
		if tpl.Annotations["karpenter.sh/do-not-disrupt"] != "true" || tpl.Annotations["cluster-autoscaler.kubernetes.io/safe-to-evict"] != "false" {
			ck.add(o.ID(), "lifecycle", "converters are not marked do-not-disrupt (karpenter.sh/do-not-disrupt, cluster-autoscaler.kubernetes.io/safe-to-evict): node consolidation would kill running jobs")
		}
	}
	if ck.maxReplicas(o, d.Spec.Replicas) > 1 {
		zone := false
		for _, c := range tpl.Spec.TopologySpreadConstraints {
			zone = zone || c.TopologyKey == "topology.kubernetes.io/zone"
		}
		if !zone {
			ck.add(o.ID(), "topology", "several replicas but no topology spread over topology.kubernetes.io/zone: one zone's outage could take them all")
		}
	}
}

// kedaRabbitMQ: the converters' scaler counts the jobs being converted too, has a fallback,
// and sets no cooldownPeriod that would do nothing.
func (ck *checker) kedaRabbitMQ(o Object, so *ScaledObject) {
	for _, t := range so.Spec.Triggers {
		if t.Type != "rabbitmq" {
			continue
		}
		if t.Metadata["protocol"] != "http" || t.Metadata["excludeUnacknowledged"] == "true" || t.Metadata["mode"] != "QueueLength" {
			ck.add(o.ID(), "autoscaling", "the rabbitmq trigger counts waiting messages only (protocol %q, excludeUnacknowledged %q): use protocol http with QueueLength, which counts ready + unacked, or busy converters are scaled in",
				t.Metadata["protocol"], t.Metadata["excludeUnacknowledged"])
		}
	}
	if so.Spec.Fallback == nil {
		ck.add(o.ID(), "autoscaling", "no fallback: when the queue cannot be read the HPA scales on nothing")
	}
	if so.Spec.CooldownPeriod != nil && (so.Spec.MinReplicaCount == nil || *so.Spec.MinReplicaCount > 0) {
		ck.add(o.ID(), "autoscaling", "cooldownPeriod only applies when scaling to zero; with minReplicaCount above 0 it does nothing (use the HPA's scaleDown stabilization)")
	}
}

func (ck *checker) podMonitor(o Object, pm *monitoringv1.PodMonitor) {
	sel, err := metav1.LabelSelectorAsSelector(&pm.Spec.Selector)
	if err != nil {
		ck.add(o.ID(), "podmonitor", "selector: %v", err)
		return
	}
	ports := map[string]bool{}
	matched := false
	for _, w := range ck.objs {
		tpl := podTemplateOf(w)
		var l map[string]string
		var ctrs []corev1.Container
		switch {
		case tpl != nil && w.Namespace == o.Namespace:
			l, ctrs = tpl.Labels, tpl.Spec.Containers
		default:
			if rc, ok := w.Typed.(*rabbitmqv1beta1.RabbitmqCluster); ok && w.Namespace == o.Namespace {
				// The operator's pods: labelled with the cluster's name, port prometheus.
				l, ctrs = map[string]string{"app.kubernetes.io/name": rc.Name}, []corev1.Container{{Ports: []corev1.ContainerPort{{Name: "prometheus", ContainerPort: 15692}}}}
			}
		}
		if l == nil || !sel.Matches(labels.Set(l)) {
			continue
		}
		matched = true
		for _, c := range ctrs {
			for _, p := range c.Ports {
				ports[p.Name] = true
			}
		}
	}
	if !matched {
		ck.add(o.ID(), "podmonitor", "selector %v matches no pods", pm.Spec.Selector.MatchLabels)
	}
	for _, e := range pm.Spec.PodMetricsEndpoints {
		if e.Port == nil || !ports[*e.Port] {
			ck.add(o.ID(), "podmonitor", "endpoint port %v is not a named port of the pods it selects", e.Port)
		}
	}
}

// DigestProblems reports every image that is not pinned by digest: the eks overlay's images
// are set with `kustomize edit set image NAME=REPO@sha256:...`.
func DigestProblems(objs []Object) []Problem {
	var probs []Problem
	digest := regexp.MustCompile(`@sha256:[0-9a-f]{64}$`)
	for _, o := range objs {
		var images []string
		if tpl := podTemplateOf(o); tpl != nil {
			for _, c := range append(tpl.Spec.InitContainers, tpl.Spec.Containers...) {
				images = append(images, c.Image)
			}
		}
		if rc, ok := o.Typed.(*rabbitmqv1beta1.RabbitmqCluster); ok {
			images = append(images, rc.Spec.Image)
		}
		for _, img := range images {
			if !digest.MatchString(img) {
				probs = append(probs, Problem{Object: o.ID(), Rule: "image", Msg: fmt.Sprintf("image %q is not pinned by digest", img)})
			}
		}
	}
	return probs
}
