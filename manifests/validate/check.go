package validate

import (
	"fmt"
	"net"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Problem is one failed check.
type Problem struct {
	Object string // kind/namespace/name, plus /container when it is about one
	Rule   string // short name of the check
	Msg    string
}

func (p Problem) String() string { return p.Object + ": [" + p.Rule + "] " + p.Msg }

// ImageName is the repository name (last path element) of the v2m image; containers running
// it are v2md containers, checked against the contract.
const ImageName = "v2m"

// v2mdUID is the numeric user the v2m image runs as.
const v2mdUID = 65532

// Check runs every check on the rendered objects; c is the `v2md describe` contract.
func Check(objs []Object, c *Contract) []Problem {
	ck := &checker{objs: objs, c: c, resolved: map[string]map[string]string{}}
	for _, o := range objs {
		switch t := o.Typed.(type) {
		case *appsv1.Deployment:
			ck.podSpec(o, &t.Spec.Template)
		case *appsv1.StatefulSet:
			ck.podSpec(o, &t.Spec.Template)
		case *appsv1.DaemonSet:
			ck.podSpec(o, &t.Spec.Template)
		case *corev1.Secret:
			if len(t.Data) > 0 || len(t.StringData) > 0 {
				ck.add(o.ID(), "secret", "a Secret with data is committed; create it with scripts/create-secrets.sh")
			}
		case *corev1.Service:
			ck.service(o, t)
		case *networkingv1.Ingress:
			ck.add(o.ID(), "edge", "an Ingress: the edge is the Gateway API (Gateway and HTTPRoutes in base/gateway-api.yaml)")
		}
	}
	ck.autoscalers()
	ck.disruptionBudgets()
	ck.edge()
	ck.broker()
	ck.operations()
	sort.SliceStable(ck.probs, func(i, j int) bool { return ck.probs[i].Object < ck.probs[j].Object })
	return ck.probs
}

type checker struct {
	objs  []Object
	c     *Contract
	probs []Problem
	// resolved holds, per subcommand, the value of every setting in the v2md container that
	// runs it (the last one seen), for checks across objects.
	resolved map[string]map[string]string
}

// setting returns the resolved value of a subcommand's setting, and whether a container runs
// that subcommand.
func (ck *checker) setting(sub, name string) (string, bool) {
	m, ok := ck.resolved[sub]
	if !ok {
		return "", false
	}
	return m[name], true
}

func (ck *checker) add(obj, rule, format string, args ...any) {
	ck.probs = append(ck.probs, Problem{Object: obj, Rule: rule, Msg: fmt.Sprintf(format, args...)})
}

func (ck *checker) find(kind, ns, name string) *Object {
	for i := range ck.objs {
		o := &ck.objs[i]
		if o.Kind == kind && o.Namespace == ns && o.Name == name {
			return o
		}
	}
	return nil
}

func (ck *checker) podSpec(o Object, tpl *corev1.PodTemplateSpec) {
	spec := &tpl.Spec
	for i := range spec.InitContainers {
		ck.container(o, spec, &spec.InitContainers[i], false)
	}
	for i := range spec.Containers {
		ck.container(o, spec, &spec.Containers[i], true)
	}
}

// container checks image, resources, probes and security of one container, and its drift
// against the contract when it runs the v2m image.
func (ck *checker) container(o Object, spec *corev1.PodSpec, ctr *corev1.Container, main bool) {
	id := o.ID() + "/" + ctr.Name
	repo, tag, digest := splitImage(ctr.Image)
	switch {
	case digest != "":
	case tag == "":
		ck.add(id, "image", "image %q has no tag", ctr.Image)
	case tag == "latest":
		ck.add(id, "image", "image %q uses :latest", ctr.Image)
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := ctr.Resources.Requests[r]; !ok {
			ck.add(id, "resources", "no %s request", r)
		}
		if _, ok := ctr.Resources.Limits[r]; !ok {
			ck.add(id, "resources", "no %s limit", r)
		}
	}
	if main {
		if ctr.LivenessProbe == nil {
			ck.add(id, "probes", "no livenessProbe")
		}
		if ctr.ReadinessProbe == nil {
			ck.add(id, "probes", "no readinessProbe")
		}
	}
	ck.security(id, spec, ctr, path.Base(repo) == ImageName)
	if path.Base(repo) == ImageName {
		ck.drift(o, id, spec, ctr)
	}
}

func (ck *checker) security(id string, spec *corev1.PodSpec, ctr *corev1.Container, v2md bool) {
	psc := spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	sc := ctr.SecurityContext
	if sc == nil {
		ck.add(id, "security", "no securityContext")
		sc = &corev1.SecurityContext{}
	}
	nonRoot := sc.RunAsNonRoot
	if nonRoot == nil {
		nonRoot = psc.RunAsNonRoot
	}
	if nonRoot == nil || !*nonRoot {
		ck.add(id, "security", "runAsNonRoot is not true")
	}
	uid := sc.RunAsUser
	if uid == nil {
		uid = psc.RunAsUser
	}
	switch {
	case uid == nil || *uid == 0:
		ck.add(id, "security", "runAsUser must be a non-zero numeric user")
	case v2md && *uid != v2mdUID:
		ck.add(id, "security", "runAsUser is %d, the v2m image runs as %d", *uid, v2mdUID)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		ck.add(id, "security", "allowPrivilegeEscalation is not false")
	}
	if sc.Privileged != nil && *sc.Privileged {
		ck.add(id, "security", "privileged")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		ck.add(id, "security", "readOnlyRootFilesystem is not true")
	}
	dropsAll := false
	if sc.Capabilities != nil {
		for _, c := range sc.Capabilities.Drop {
			dropsAll = dropsAll || c == "ALL"
		}
		if len(sc.Capabilities.Add) > 0 {
			ck.add(id, "security", "adds capabilities %v", sc.Capabilities.Add)
		}
	}
	if !dropsAll {
		ck.add(id, "security", "capabilities do not drop ALL")
	}
	sp := sc.SeccompProfile
	if sp == nil {
		sp = psc.SeccompProfile
	}
	if sp == nil || sp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		ck.add(id, "security", "seccompProfile is not RuntimeDefault")
	}
}

// splitImage splits repo[:tag][@digest].
func splitImage(image string) (repo, tag, digest string) {
	if i := strings.Index(image, "@"); i >= 0 {
		image, digest = image[:i], image[i+1:]
	}
	repo = image
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		repo, tag = image[:i], image[i+1:]
	}
	return repo, tag, digest
}

// value is where a setting's value came from.
type value struct {
	val, from string
}

// drift checks one v2md container against the contract of its subcommand.
func (ck *checker) drift(o Object, id string, spec *corev1.PodSpec, ctr *corev1.Container) {
	if len(ctr.Command) > 0 && !(len(ctr.Command) == 1 && ctr.Command[0] == "v2md") {
		ck.add(id, "drift", "command %v overrides the image's v2md entrypoint", ctr.Command)
		return
	}
	if len(ctr.Args) == 0 {
		ck.add(id, "drift", "no subcommand in args")
		return
	}
	sub := ck.c.Subcommand(ctr.Args[0])
	if sub == nil {
		ck.add(id, "drift", "subcommand %q is not in `v2md describe`", ctr.Args[0])
		return
	}
	vals := map[string]value{} // setting name -> value, flags over env over envFrom
	setEnv := func(name, val, from string) {
		if !strings.HasPrefix(name, "V2MD_") {
			return
		}
		st := sub.ByEnv(name)
		if st == nil {
			ck.add(id, "drift", "%s sets %s, which is not a setting of %q", from, name, sub.Name)
			return
		}
		vals[st.Name] = value{val, from}
	}
	for _, ef := range ctr.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			cmObj := ck.find("ConfigMap", o.Namespace, ef.ConfigMapRef.Name)
			if cmObj == nil {
				if ef.ConfigMapRef.Optional == nil || !*ef.ConfigMapRef.Optional {
					ck.add(id, "drift", "envFrom ConfigMap %q is not in the manifests", ef.ConfigMapRef.Name)
				}
				continue
			}
			cm := cmObj.Typed.(*corev1.ConfigMap)
			for _, k := range sortedKeys(cm.Data) {
				setEnv(ef.Prefix+k, cm.Data[k], "ConfigMap "+cm.Name)
			}
		case ef.SecretRef != nil:
			ck.add(id, "secret-files", "envFrom Secret %q: v2md reads secrets from files (*-file settings)", ef.SecretRef.Name)
		}
	}
	for _, e := range ctr.Env {
		if e.ValueFrom != nil {
			if e.ValueFrom.SecretKeyRef != nil {
				ck.add(id, "secret-files", "env %s comes from a Secret: mount it and use a *-file setting", e.Name)
			}
			if e.ValueFrom.ConfigMapKeyRef != nil {
				if cmObj := ck.find("ConfigMap", o.Namespace, e.ValueFrom.ConfigMapKeyRef.Name); cmObj != nil {
					setEnv(e.Name, cmObj.Typed.(*corev1.ConfigMap).Data[e.ValueFrom.ConfigMapKeyRef.Key], "env")
					continue
				}
			}
			setEnv(e.Name, "", "env")
			continue
		}
		setEnv(e.Name, e.Value, "env")
	}
	for i := 1; i < len(ctr.Args); i++ {
		a := ctr.Args[i]
		if !strings.HasPrefix(a, "--") {
			ck.add(id, "drift", "argument %q is not a --flag", a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !hasVal && i+1 < len(ctr.Args) && !strings.HasPrefix(ctr.Args[i+1], "--") {
			i++
			val = ctr.Args[i]
		}
		if sub.ByName(name) == nil {
			ck.add(id, "drift", "flag --%s is not a setting of %q", name, sub.Name)
			continue
		}
		vals[name] = value{val, "flag"}
	}
	get := func(name string) (string, bool) {
		if v, ok := vals[name]; ok {
			return v.val, true
		}
		if st := sub.ByName(name); st != nil {
			return st.Default, false
		}
		return "", false
	}

	res := map[string]string{}
	for _, st := range sub.Settings {
		res[st.Name], _ = get(st.Name)
	}
	ck.resolved[sub.Name] = res
	if v, ok := get("log-format"); sub.ByName("log-format") != nil && (!ok || v != "json") {
		ck.add(id, "drift", "log-format is %q: use json in Kubernetes", v)
	}
	ck.secretFiles(id, sub, spec, ctr, vals)
	ck.probes(id, sub, ctr, get)
	ck.metrics(id, sub, ctr, get)

	if st := sub.ByName("tmp-dir"); st != nil {
		if v, _ := get("tmp-dir"); v != "" && !mounted(ctr, v) {
			ck.add(id, "drift", "tmp-dir %s is not on a mounted volume (the root filesystem is read-only)", v)
		}
	}
	if st := sub.ByName("job-timeout"); st != nil {
		v, _ := get("job-timeout")
		d, err := time.ParseDuration(v)
		if err != nil {
			ck.add(id, "drift", "job-timeout %q: %v", v, err)
		} else {
			grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
			if spec.TerminationGracePeriodSeconds != nil {
				grace = *spec.TerminationGracePeriodSeconds
			}
			if time.Duration(grace)*time.Second < d+30*time.Second {
				ck.add(id, "drift", "terminationGracePeriodSeconds %d is not above job-timeout %s plus 30s", grace, d)
			}
			if sub.ByName("shutdown-timeout") != nil {
				v, _ := get("shutdown-timeout")
				if sd, err := time.ParseDuration(v); err != nil {
					ck.add(id, "drift", "shutdown-timeout %q: %v", v, err)
				} else if time.Duration(grace)*time.Second < sd+30*time.Second {
					ck.add(id, "drift", "terminationGracePeriodSeconds %d is not above shutdown-timeout %s plus 30s", grace, sd)
				}
			}
		}
	}
}

// mounted reports whether path lies in one of the container's volume mounts.
func mounted(ctr *corev1.Container, p string) bool {
	for _, m := range ctr.VolumeMounts {
		if p == m.MountPath || strings.HasPrefix(p, strings.TrimSuffix(m.MountPath, "/")+"/") {
			return !m.ReadOnly
		}
	}
	return false
}

// secretFiles checks that every *-file setting points at a file mounted from a Secret, and
// that every file mounted from a Secret is read through a *-file setting of this subcommand.
func (ck *checker) secretFiles(id string, sub *Subcommand, spec *corev1.PodSpec, ctr *corev1.Container, vals map[string]value) {
	files := map[string]string{} // mounted secret file -> "secret/key"
	dirs := map[string]string{}  // secret mounted whole, no items: dir -> secret
	vols := map[string]*corev1.Volume{}
	for i := range spec.Volumes {
		vols[spec.Volumes[i].Name] = &spec.Volumes[i]
	}
	for _, m := range ctr.VolumeMounts {
		v := vols[m.Name]
		if v == nil {
			ck.add(id, "volumes", "volumeMount %q has no volume", m.Name)
			continue
		}
		var srcs []*corev1.SecretProjection
		if v.Secret != nil {
			srcs = append(srcs, &corev1.SecretProjection{
				LocalObjectReference: corev1.LocalObjectReference{Name: v.Secret.SecretName}, Items: v.Secret.Items})
		}
		if v.Projected != nil {
			for _, s := range v.Projected.Sources {
				if s.Secret != nil {
					srcs = append(srcs, s.Secret)
				}
			}
		}
		for _, s := range srcs {
			if m.SubPath != "" {
				files[m.MountPath] = s.Name + "/" + m.SubPath
				continue
			}
			if len(s.Items) == 0 {
				dirs[m.MountPath] = s.Name
				continue
			}
			for _, it := range s.Items {
				files[path.Join(m.MountPath, it.Path)] = s.Name + "/" + it.Key
			}
		}
	}
	used := map[string]bool{}
	for _, name := range sortedKeys(vals) {
		if !strings.HasSuffix(name, "-file") && !strings.HasSuffix(name, "-files") {
			continue
		}
		for _, f := range strings.Split(vals[name].val, ",") {
			if f = strings.TrimSpace(f); f == "" {
				continue
			}
			if _, ok := files[f]; ok {
				used[f] = true
				continue
			}
			if _, ok := dirs[path.Dir(f)]; ok {
				continue
			}
			ck.add(id, "secret-files", "%s=%s is not a file mounted from a Secret", name, f)
		}
	}
	for _, f := range sortedKeys(files) {
		if !used[f] {
			ck.add(id, "secret-files", "secret file %s (%s) is mounted but no *-file setting of %q reads it", f, files[f], sub.Name)
		}
	}
}

// probes checks that every HTTP probe hits a path the subcommand serves on its listen port.
func (ck *checker) probes(id string, sub *Subcommand, ctr *corev1.Container, get func(string) (string, bool)) {
	listen, _ := get("listen")
	port := -1
	if _, p, err := net.SplitHostPort(listen); err == nil {
		if n, err := strconv.Atoi(p); err == nil {
			port = n
		}
	}
	if sub.ByName("listen") == nil || port < 0 {
		ck.add(id, "probes", "subcommand %q has no usable listen address (%q)", sub.Name, listen)
		return
	}
	want := map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"}
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
	}{{"livenessProbe", ctr.LivenessProbe}, {"readinessProbe", ctr.ReadinessProbe}, {"startupProbe", ctr.StartupProbe}} {
		if p.probe == nil {
			continue
		}
		g := p.probe.HTTPGet
		if g == nil {
			ck.add(id, "probes", "%s is not an httpGet probe", p.name)
			continue
		}
		if w := want[p.name]; w != "" && g.Path != w {
			ck.add(id, "probes", "%s path is %s, want %s", p.name, g.Path, w)
		}
		if !sub.Serves(g.Path) {
			ck.add(id, "probes", "%s path %s is not served by %q", p.name, g.Path, sub.Name)
		}
		got, err := containerPort(ctr, g.Port)
		if err != nil {
			ck.add(id, "probes", "%s: %v", p.name, err)
			continue
		}
		if got != port {
			ck.add(id, "probes", "%s port %d is not the port %q listens on (%s)", p.name, got, sub.Name, listen)
		}
	}
	for _, cp := range ctr.Ports {
		if cp.Name == "http" && int(cp.ContainerPort) != port {
			ck.add(id, "probes", "containerPort http is %d, %q listens on %s", cp.ContainerPort, sub.Name, listen)
		}
	}
}

// metrics checks that a subcommand with --metrics-addr serves its metrics where Prometheus can
// scrape them: not on loopback, on the port of a containerPort named metrics (and that such a
// port is not declared when metrics are off).
func (ck *checker) metrics(id string, sub *Subcommand, ctr *corev1.Container, get func(string) (string, bool)) {
	if sub.ByName("metrics-addr") == nil {
		return
	}
	named := -1
	for _, cp := range ctr.Ports {
		if cp.Name == "metrics" {
			named = int(cp.ContainerPort)
		}
	}
	addr, _ := get("metrics-addr")
	if addr == "" {
		if named >= 0 {
			ck.add(id, "metrics", "containerPort metrics is declared but --metrics-addr is empty (no metrics served)")
		}
		return
	}
	host, p, err := net.SplitHostPort(addr)
	port, perr := strconv.Atoi(p)
	switch {
	case err != nil || perr != nil:
		ck.add(id, "metrics", "metrics-addr %q is not host:port", addr)
	case host == "127.0.0.1" || host == "localhost" || host == "::1":
		ck.add(id, "metrics", "metrics-addr %s is loopback: set --metrics-addr=:PORT so that Prometheus can scrape it", addr)
	case named < 0:
		ck.add(id, "metrics", "no containerPort named metrics for metrics-addr %s", addr)
	case named != port:
		ck.add(id, "metrics", "containerPort metrics is %d, metrics-addr is %s", named, addr)
	}
}

func containerPort(ctr *corev1.Container, p intstr.IntOrString) (int, error) {
	if p.Type == intstr.Int {
		return p.IntValue(), nil
	}
	for _, cp := range ctr.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("port %q is not a named containerPort", p.StrVal)
}

// podTemplates returns the workloads' pod templates by object ID.
func (ck *checker) podTemplates() map[string]*corev1.PodTemplateSpec {
	m := map[string]*corev1.PodTemplateSpec{}
	for _, o := range ck.objs {
		if tpl := podTemplateOf(o); tpl != nil {
			m[o.ID()] = tpl
		}
	}
	return m
}

func (ck *checker) service(o Object, svc *corev1.Service) {
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer || svc.Spec.Type == corev1.ServiceTypeNodePort {
		ck.add(o.ID(), "service", "type %s exposes the service outside the cluster: use the Gateway", svc.Spec.Type)
	}
	if len(svc.Spec.Selector) == 0 {
		return
	}
	sel := labels.SelectorFromSet(svc.Spec.Selector)
	matched := false
	for wid, tpl := range ck.podTemplates() {
		if !strings.Contains(wid, "/"+o.Namespace+"/") || !sel.Matches(labels.Set(tpl.Labels)) {
			continue
		}
		matched = true
		for _, sp := range svc.Spec.Ports {
			if sp.TargetPort.Type != intstr.String {
				continue
			}
			found := false
			for i := range tpl.Spec.Containers {
				if _, err := containerPort(&tpl.Spec.Containers[i], sp.TargetPort); err == nil {
					found = true
				}
			}
			if !found {
				ck.add(o.ID(), "service", "targetPort %q is not a port of %s", sp.TargetPort.StrVal, wid)
			}
		}
	}
	if !matched {
		ck.add(o.ID(), "service", "selector %v matches no workload", svc.Spec.Selector)
	}
}

// autoscalers checks that each workload has at most one autoscaler and that it exists.
func (ck *checker) autoscalers() {
	targets := map[string][]string{}
	for _, o := range ck.objs {
		switch t := o.Typed.(type) {
		case *autoscalingv2.HorizontalPodAutoscaler:
			targets[t.Spec.ScaleTargetRef.Kind+"/"+o.Namespace+"/"+t.Spec.ScaleTargetRef.Name] = append(
				targets[t.Spec.ScaleTargetRef.Kind+"/"+o.Namespace+"/"+t.Spec.ScaleTargetRef.Name], o.ID())
		case *ScaledObject:
			kind := t.Spec.ScaleTargetRef.Kind
			if kind == "" {
				kind = "Deployment"
			}
			key := kind + "/" + o.Namespace + "/" + t.Spec.ScaleTargetRef.Name
			targets[key] = append(targets[key], o.ID())
			for _, tr := range t.Spec.Triggers {
				if tr.AuthenticationRef != nil && ck.find("TriggerAuthentication", o.Namespace, tr.AuthenticationRef.Name) == nil {
					ck.add(o.ID(), "autoscaling", "authenticationRef %q is not in the manifests", tr.AuthenticationRef.Name)
				}
			}
		}
	}
	for _, key := range sortedKeys(targets) {
		parts := strings.SplitN(key, "/", 3)
		if ck.find(parts[0], parts[1], parts[2]) == nil {
			ck.add(targets[key][0], "autoscaling", "target %s is not in the manifests", key)
		}
		if len(targets[key]) > 1 {
			ck.add(key, "autoscaling", "scaled by more than one autoscaler: %v", targets[key])
		}
	}
}

// maxReplicas returns how many replicas a workload may have, counting its autoscaler.
func (ck *checker) maxReplicas(o Object, replicas *int32) int32 {
	n := int32(1)
	if replicas != nil {
		n = *replicas
	}
	for _, a := range ck.objs {
		switch t := a.Typed.(type) {
		case *autoscalingv2.HorizontalPodAutoscaler:
			if t.Spec.ScaleTargetRef.Kind == o.Kind && t.Spec.ScaleTargetRef.Name == o.Name && t.Spec.MaxReplicas > n {
				n = t.Spec.MaxReplicas
			}
		case *ScaledObject:
			if t.Spec.ScaleTargetRef.Name == o.Name && t.Spec.MaxReplicaCount != nil && *t.Spec.MaxReplicaCount > n {
				n = *t.Spec.MaxReplicaCount
			}
		}
	}
	return n
}

// disruptionBudgets checks that every workload that may run more than one replica has a PDB,
// and that no PDB can block every eviction.
func (ck *checker) disruptionBudgets() {
	var pdbs []*policyv1.PodDisruptionBudget
	for _, o := range ck.objs {
		if p, ok := o.Typed.(*policyv1.PodDisruptionBudget); ok {
			pdbs = append(pdbs, p)
		}
	}
	for _, o := range ck.objs {
		var replicas *int32
		var tpl *corev1.PodTemplateSpec
		switch t := o.Typed.(type) {
		case *appsv1.Deployment:
			replicas, tpl = t.Spec.Replicas, &t.Spec.Template
		case *appsv1.StatefulSet:
			replicas, tpl = t.Spec.Replicas, &t.Spec.Template
		default:
			continue
		}
		max := ck.maxReplicas(o, replicas)
		cur := int32(1)
		if replicas != nil {
			cur = *replicas
		}
		covered := false
		for _, p := range pdbs {
			sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
			if err != nil || p.Namespace != o.Namespace || !sel.Matches(labels.Set(tpl.Labels)) {
				continue
			}
			covered = true
			if p.Spec.MinAvailable != nil && p.Spec.MinAvailable.Type == intstr.Int && int32(p.Spec.MinAvailable.IntValue()) >= cur {
				ck.add(o.ID(), "pdb", "PDB %s minAvailable %d blocks every eviction at %d replicas", p.Name, p.Spec.MinAvailable.IntValue(), cur)
			}
			if p.Spec.MaxUnavailable != nil && p.Spec.MaxUnavailable.Type == intstr.Int && p.Spec.MaxUnavailable.IntValue() == 0 {
				ck.add(o.ID(), "pdb", "PDB %s maxUnavailable 0 blocks every eviction", p.Name)
			}
		}
		if max > 1 && !covered {
			ck.add(o.ID(), "pdb", "may run %d replicas but no PodDisruptionBudget selects its pods", max)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// podTemplateOf returns the pod template of a workload object, or nil.
func podTemplateOf(o Object) *corev1.PodTemplateSpec {
	switch t := o.Typed.(type) {
	case *appsv1.Deployment:
		return &t.Spec.Template
	case *appsv1.StatefulSet:
		return &t.Spec.Template
	case *appsv1.DaemonSet:
		return &t.Spec.Template
	}
	return nil
}
