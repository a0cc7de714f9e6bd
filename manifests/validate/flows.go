package validate

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// FlowSpec is manifests/flows.yaml: the endpoints of the system and the flows between them
// that the NetworkPolicies must allow, and nothing else.
type FlowSpec struct {
	Endpoints map[string]Endpoint `json:"endpoints"`
	Flows     []Flow              `json:"flows"`
}

// Endpoint is a pod (Namespace and Labels) or an address outside the cluster (IP only).
type Endpoint struct {
	Namespace string            `json:"namespace,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	IP        string            `json:"ip"`
	Overlays  []string          `json:"overlays,omitempty"`
}

func (e Endpoint) pod() bool { return e.Namespace != "" }

func (e Endpoint) in(overlay string) bool {
	return len(e.Overlays) == 0 || contains(e.Overlays, overlay)
}

// Flow is a needed flow: From and To are endpoint names or "any"; Ports numbers, LOW-HIGH
// ranges or "any"; Protocols TCP when empty.
type Flow struct {
	From      names    `json:"from"`
	To        names    `json:"to"`
	Ports     []string `json:"ports"`
	Protocols []string `json:"protocols,omitempty"`
	Why       string   `json:"why"`
}

// names is one name or a list of names in YAML.
type names []string

func (n *names) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*n = names{one}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("want a name or a list of names: %w", err)
	}
	*n = list
	return nil
}

// ReadFlows reads and checks a flows file: every flow names known endpoints and valid ports.
func ReadFlows(path string) (*FlowSpec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var fs FlowSpec
	if err := yaml.UnmarshalStrict(data, &fs); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for name, e := range fs.Endpoints {
		if net.ParseIP(e.IP) == nil {
			return nil, fmt.Errorf("%s: endpoint %s: ip %q", path, name, e.IP)
		}
	}
	for i, f := range fs.Flows {
		for _, n := range append(append(names{}, f.From...), f.To...) {
			if _, ok := fs.Endpoints[n]; !ok && n != "any" {
				return nil, fmt.Errorf("%s: flow %d names endpoint %q, which is not defined", path, i, n)
			}
		}
		for _, p := range f.Ports {
			if _, _, err := portRange(p); err != nil {
				return nil, fmt.Errorf("%s: flow %d: %w", path, i, err)
			}
		}
	}
	return &fs, nil
}

func portRange(p string) (lo, hi int, err error) {
	if p == "any" {
		return 1, 65535, nil
	}
	a, b, isRange := strings.Cut(p, "-")
	lo, err1 := strconv.Atoi(a)
	hi = lo
	var err2 error
	if isRange {
		hi, err2 = strconv.Atoi(b)
	}
	if err1 != nil || err2 != nil || lo < 1 || hi > 65535 || lo > hi {
		return 0, 0, fmt.Errorf("port %q is not a number, LOW-HIGH or any", p)
	}
	return lo, hi, nil
}

// probe is one connection attempt.
type probe struct {
	from, to, proto string
	port            int
}

func (p probe) String() string { return fmt.Sprintf("%s -> %s %s/%d", p.from, p.to, p.proto, p.port) }

// CheckFlows evaluates the NetworkPolicies among objs for the endpoints of overlay: every
// needed flow must be allowed, and every other probe (each pair of endpoints, on every port
// the flows name, the ends of their ranges and a few common ports) must be refused.
func (fs *FlowSpec) CheckFlows(objs []Object, overlay string) []Problem {
	var pols []*networkingv1.NetworkPolicy
	for _, o := range objs {
		if p, ok := o.Typed.(*networkingv1.NetworkPolicy); ok {
			pols = append(pols, p)
		}
	}
	policed := map[string]bool{} // namespaces whose pods the policies govern
	for _, p := range pols {
		policed[p.Namespace] = true
	}
	governed := func(e Endpoint) bool { return e.pod() && policed[e.Namespace] }
	var eps, outside []string
	for n, e := range fs.Endpoints {
		if e.in(overlay) {
			eps = append(eps, n)
			if !governed(e) {
				outside = append(outside, n)
			}
		}
	}
	sort.Strings(eps)
	sort.Strings(outside)
	// "any" as a source is the world outside the policed namespaces when a flow must pass;
	// a policed pod reaching the same port is not needed, so it must be refused.
	expand := func(ns names) []string {
		if len(ns) == 1 && ns[0] == "any" {
			return outside
		}
		var out []string
		for _, n := range ns {
			if fs.Endpoints[n].in(overlay) {
				out = append(out, n)
			}
		}
		return out
	}
	ports := map[int]bool{22: true, 80: true, 443: true, 3306: true, 5432: true, 5672: true, 6379: true, 8080: true,
		8081: true, 8082: true, 8083: true, 9090: true, 15672: true, 15692: true, 25: true, 587: true, 27017: true, 53: true}
	needed := func(p probe) bool {
		for _, f := range fs.Flows {
			protos := f.Protocols
			if len(protos) == 0 {
				protos = []string{"TCP"}
			}
			if !contains(expand(f.From), p.from) || !contains(expand(f.To), p.to) || !contains(protos, p.proto) {
				continue
			}
			for _, pr := range f.Ports {
				if lo, hi, _ := portRange(pr); p.port >= lo && p.port <= hi {
					return true
				}
			}
		}
		return false
	}
	var probs []Problem
	for _, f := range fs.Flows {
		for _, pr := range f.Ports {
			lo, hi, _ := portRange(pr)
			ports[lo], ports[hi], ports[(lo+hi)/2] = true, true, true
			protos := f.Protocols
			if len(protos) == 0 {
				protos = []string{"TCP"}
			}
			for _, from := range expand(f.From) {
				for _, to := range expand(f.To) {
					for _, proto := range protos {
						for _, port := range []int{lo, (lo + hi) / 2, hi} {
							p := probe{from, to, proto, port}
							if !fs.allowed(pols, p) {
								probs = append(probs, Problem{Object: "flows/" + overlay, Rule: "netpol",
									Msg: fmt.Sprintf("needed flow %s is blocked (%s)", p, f.Why)})
							}
						}
					}
				}
			}
		}
	}
	var portList []int
	for p := range ports {
		portList = append(portList, p)
	}
	sort.Ints(portList)
	for _, from := range eps {
		for _, to := range eps {
			if !governed(fs.Endpoints[from]) && !governed(fs.Endpoints[to]) {
				continue // no policy here can govern this pair
			}
			for _, proto := range []string{"TCP", "UDP"} {
				for _, port := range portList {
					p := probe{from, to, proto, port}
					if fs.allowed(pols, p) && !needed(p) {
						probs = append(probs, Problem{Object: "flows/" + overlay, Rule: "netpol",
							Msg: fmt.Sprintf("unneeded flow %s is allowed", p)})
					}
				}
			}
		}
	}
	return probs
}

// allowed reports whether the policies let p through: out of the source (when a policy
// selects it for Egress) and into the destination (when one selects it for Ingress).
func (fs *FlowSpec) allowed(pols []*networkingv1.NetworkPolicy, p probe) bool {
	src, dst := fs.Endpoints[p.from], fs.Endpoints[p.to]
	return fs.side(pols, src, dst, p, networkingv1.PolicyTypeEgress) && fs.side(pols, dst, src, p, networkingv1.PolicyTypeIngress)
}

// side evaluates one end: self is the pod the policies may select, peer the other end.
func (fs *FlowSpec) side(pols []*networkingv1.NetworkPolicy, self, peer Endpoint, p probe, typ networkingv1.PolicyType) bool {
	if !self.pod() {
		return true
	}
	selected := false
	for _, pol := range pols {
		if pol.Namespace != self.Namespace || !hasType(pol, typ) || !selectorMatches(&pol.Spec.PodSelector, self.Labels) {
			continue
		}
		selected = true
		if typ == networkingv1.PolicyTypeEgress {
			for _, r := range pol.Spec.Egress {
				if peersMatch(r.To, pol.Namespace, peer) && portsMatch(r.Ports, p) {
					return true
				}
			}
		} else {
			for _, r := range pol.Spec.Ingress {
				if peersMatch(r.From, pol.Namespace, peer) && portsMatch(r.Ports, p) {
					return true
				}
			}
		}
	}
	return !selected
}

func hasType(pol *networkingv1.NetworkPolicy, typ networkingv1.PolicyType) bool {
	types := pol.Spec.PolicyTypes
	if len(types) == 0 { // the API's default: Ingress, plus Egress when egress rules exist
		types = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		if len(pol.Spec.Egress) > 0 {
			types = append(types, networkingv1.PolicyTypeEgress)
		}
	}
	for _, t := range types {
		if t == typ {
			return true
		}
	}
	return false
}

func selectorMatches(sel *metav1.LabelSelector, l map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && s.Matches(labels.Set(l))
}

func peersMatch(peers []networkingv1.NetworkPolicyPeer, polNS string, e Endpoint) bool {
	if len(peers) == 0 {
		return true
	}
	for _, pr := range peers {
		if pr.IPBlock != nil {
			if inBlock(pr.IPBlock, e.IP) {
				return true
			}
			continue
		}
		if !e.pod() {
			continue
		}
		if pr.NamespaceSelector == nil {
			if e.Namespace != polNS {
				continue
			}
		} else if !selectorMatches(pr.NamespaceSelector, map[string]string{"kubernetes.io/metadata.name": e.Namespace}) {
			continue
		}
		if pr.PodSelector == nil || selectorMatches(pr.PodSelector, e.Labels) {
			return true
		}
	}
	return false
}

func inBlock(b *networkingv1.IPBlock, ip string) bool {
	addr := net.ParseIP(ip)
	_, cidr, err := net.ParseCIDR(b.CIDR)
	if err != nil || !cidr.Contains(addr) {
		return false
	}
	for _, ex := range b.Except {
		if _, n, err := net.ParseCIDR(ex); err == nil && n.Contains(addr) {
			return false
		}
	}
	return true
}

func portsMatch(ports []networkingv1.NetworkPolicyPort, p probe) bool {
	if len(ports) == 0 {
		return true
	}
	for _, np := range ports {
		proto := "TCP"
		if np.Protocol != nil {
			proto = string(*np.Protocol)
		}
		if proto != p.proto {
			continue
		}
		if np.Port == nil {
			return true
		}
		lo := np.Port.IntValue() // named ports do not match: the policies use numbers
		hi := lo
		if np.EndPort != nil {
			hi = int(*np.EndPort)
		}
		if lo > 0 && p.port >= lo && p.port <= hi {
			return true
		}
	}
	return false
}
