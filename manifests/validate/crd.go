package validate

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// crd is a custom resource type decoded strictly and checked for its required fields.
type crd interface{ validate() error }

// crdKinds are the custom resources the manifests may contain, by apiVersion/kind.
// Their Go modules are not available here (KEDA, NGINX Gateway Fabric, cert-manager): these
// structs mirror the fields v2m uses of their published schemas, decoded strictly.
var crdKinds = map[string]func() crd{
	"keda.sh/v1alpha1/ScaledObject":                   func() crd { return new(ScaledObject) },
	"keda.sh/v1alpha1/TriggerAuthentication":          func() crd { return new(TriggerAuthentication) },
	"gateway.nginx.org/v1alpha1/SnippetsFilter":       func() crd { return new(SnippetsFilter) },
	"gateway.nginx.org/v1alpha1/ClientSettingsPolicy": func() crd { return new(ClientSettingsPolicy) },
	"gateway.nginx.org/v1alpha1/ProxySettingsPolicy":  func() crd { return new(ProxySettingsPolicy) },
	"gateway.nginx.org/v1alpha1/RateLimitPolicy":      func() crd { return new(RateLimitPolicy) },
	"gateway.nginx.org/v1alpha2/NginxProxy":           func() crd { return new(NginxProxy) },
	"cert-manager.io/v1/Certificate":                  func() crd { return new(Certificate) },
	"cert-manager.io/v1/ClusterIssuer":                func() crd { return new(ClusterIssuer) },
}

// ScaledObject is the part of KEDA's keda.sh/v1alpha1 ScaledObject that v2m uses.
type ScaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              ScaledObjectSpec `json:"spec"`
}

// ScaledObjectSpec is KEDA's ScaledObject spec.
type ScaledObjectSpec struct {
	ScaleTargetRef   ScaleTarget     `json:"scaleTargetRef"`
	PollingInterval  *int32          `json:"pollingInterval,omitempty"`
	CooldownPeriod   *int32          `json:"cooldownPeriod,omitempty"`
	MinReplicaCount  *int32          `json:"minReplicaCount,omitempty"`
	MaxReplicaCount  *int32          `json:"maxReplicaCount,omitempty"`
	IdleReplicaCount *int32          `json:"idleReplicaCount,omitempty"`
	Fallback         *KEDAFallback   `json:"fallback,omitempty"`
	Advanced         *KEDAAdvanced   `json:"advanced,omitempty"`
	Triggers         []ScaleTriggers `json:"triggers"`
}

// ScaleTarget names the workload a ScaledObject scales.
type ScaleTarget struct {
	APIVersion    string `json:"apiVersion,omitempty"`
	Kind          string `json:"kind,omitempty"`
	Name          string `json:"name"`
	EnvSourceName string `json:"envSourceContainerName,omitempty"`
}

// KEDAFallback is ScaledObject.spec.fallback: the replicas to hold when the scaler fails.
type KEDAFallback struct {
	FailureThreshold int32  `json:"failureThreshold"`
	Replicas         int32  `json:"replicas"`
	Behavior         string `json:"behavior,omitempty"`
}

// KEDAAdvanced is ScaledObject.spec.advanced.
type KEDAAdvanced struct {
	RestoreToOriginalReplicaCount bool `json:"restoreToOriginalReplicaCount,omitempty"`
	HorizontalPodAutoscalerConfig *struct {
		Name     string                                         `json:"name,omitempty"`
		Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior,omitempty"`
	} `json:"horizontalPodAutoscalerConfig,omitempty"`
}

// ScaleTriggers is one KEDA trigger.
type ScaleTriggers struct {
	Type              string            `json:"type"`
	Name              string            `json:"name,omitempty"`
	UseCachedMetrics  bool              `json:"useCachedMetrics,omitempty"`
	Metadata          map[string]string `json:"metadata"`
	AuthenticationRef *struct {
		Name string `json:"name"`
		Kind string `json:"kind,omitempty"`
	} `json:"authenticationRef,omitempty"`
	MetricType string `json:"metricType,omitempty"`
}

func (s *ScaledObject) validate() error {
	var errs []error
	if s.Spec.ScaleTargetRef.Name == "" {
		errs = append(errs, errors.New("spec.scaleTargetRef.name is required"))
	}
	if len(s.Spec.Triggers) == 0 {
		errs = append(errs, errors.New("spec.triggers needs at least one trigger"))
	}
	minR, maxR := int32(0), int32(100)
	if s.Spec.MinReplicaCount != nil {
		minR = *s.Spec.MinReplicaCount
	}
	if s.Spec.MaxReplicaCount != nil {
		maxR = *s.Spec.MaxReplicaCount
	}
	if minR < 0 || maxR < 1 || minR > maxR {
		errs = append(errs, fmt.Errorf("replica counts min %d max %d are inconsistent", minR, maxR))
	}
	if f := s.Spec.Fallback; f != nil && (f.FailureThreshold < 1 || f.Replicas < 1) {
		errs = append(errs, errors.New("spec.fallback needs failureThreshold and replicas of at least 1"))
	}
	for i, t := range s.Spec.Triggers {
		if t.Type == "" {
			errs = append(errs, fmt.Errorf("spec.triggers[%d].type is required", i))
		}
		if t.Type == "rabbitmq" {
			if t.Metadata["queueName"] == "" {
				errs = append(errs, fmt.Errorf("spec.triggers[%d]: rabbitmq needs metadata.queueName", i))
			}
			if t.Metadata["host"] == "" && t.Metadata["hostFromEnv"] == "" && t.AuthenticationRef == nil {
				errs = append(errs, fmt.Errorf("spec.triggers[%d]: rabbitmq needs host, hostFromEnv or authenticationRef", i))
			}
			if t.Metadata["host"] != "" {
				errs = append(errs, fmt.Errorf("spec.triggers[%d]: the broker URL holds a password: take it from a TriggerAuthentication", i))
			}
		}
	}
	return errors.Join(errs...)
}

// TriggerAuthentication is KEDA's keda.sh/v1alpha1 TriggerAuthentication (secret refs only).
type TriggerAuthentication struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SecretTargetRef []struct {
			Parameter string `json:"parameter"`
			Name      string `json:"name"`
			Key       string `json:"key"`
		} `json:"secretTargetRef"`
	} `json:"spec"`
}

func (a *TriggerAuthentication) validate() error {
	if len(a.Spec.SecretTargetRef) == 0 {
		return errors.New("spec.secretTargetRef needs at least one entry")
	}
	for i, r := range a.Spec.SecretTargetRef {
		if r.Parameter == "" || r.Name == "" || r.Key == "" {
			return fmt.Errorf("spec.secretTargetRef[%d] needs parameter, name and key", i)
		}
	}
	return nil
}

// ngfTarget is a Gateway API LocalPolicyTargetReference.
type ngfTarget struct {
	Group string `json:"group"`
	Kind  string `json:"kind"`
	Name  string `json:"name"`
}

func validTargets(ts []ngfTarget) error {
	if len(ts) == 0 {
		return errors.New("spec.targetRefs needs at least one target")
	}
	for i, t := range ts {
		if t.Group != "gateway.networking.k8s.io" || (t.Kind != "Gateway" && t.Kind != "HTTPRoute" && t.Kind != "GRPCRoute") || t.Name == "" {
			return fmt.Errorf("target %d (%s %s %q) is not a Gateway API Gateway or route", i, t.Group, t.Kind, t.Name)
		}
	}
	return nil
}

// ngfSize is NGINX Gateway Fabric's Size: digits and an optional k, m or g.
var ngfSize = regexp.MustCompile(`^\d{1,4}(k|m|g)?$`)

// ngfDuration is NGINX Gateway Fabric's Duration: digits and ms, s, m or h.
var ngfDuration = regexp.MustCompile(`^[0-9]{1,4}(ms|s|m|h)?$`)

// SnippetsFilter is NGINX Gateway Fabric's gateway.nginx.org/v1alpha1 SnippetsFilter.
type SnippetsFilter struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Snippets []struct {
			Context string `json:"context"`
			Value   string `json:"value"`
		} `json:"snippets"`
	} `json:"spec"`
}

func (f *SnippetsFilter) validate() error {
	if len(f.Spec.Snippets) == 0 || len(f.Spec.Snippets) > 4 {
		return errors.New("spec.snippets needs 1 to 4 snippets")
	}
	seen := map[string]bool{}
	for i, sn := range f.Spec.Snippets {
		switch sn.Context {
		case "main", "http", "http.server", "http.server.location", "stream", "stream.server":
		default:
			return fmt.Errorf("spec.snippets[%d].context %q is not an NGINX context", i, sn.Context)
		}
		if seen[sn.Context] || strings.TrimSpace(sn.Value) == "" {
			return fmt.Errorf("spec.snippets[%d]: one non-empty snippet per context", i)
		}
		seen[sn.Context] = true
	}
	return nil
}

// directive returns the value of an NGINX directive in the snippets of context ctx.
func (f *SnippetsFilter) directive(ctx, name string) (string, bool) {
	for _, sn := range f.Spec.Snippets {
		if sn.Context != ctx {
			continue
		}
		for _, stmt := range strings.Split(sn.Value, ";") {
			fields := strings.Fields(stmt)
			if len(fields) >= 2 && fields[0] == name {
				return strings.Join(fields[1:], " "), true
			}
		}
	}
	return "", false
}

// ClientSettingsPolicy is NGINX Gateway Fabric's gateway.nginx.org/v1alpha1 ClientSettingsPolicy.
type ClientSettingsPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		TargetRef ngfTarget `json:"targetRef"`
		Body      *struct {
			MaxSize *string `json:"maxSize,omitempty"`
			Timeout *string `json:"timeout,omitempty"`
		} `json:"body,omitempty"`
		KeepAlive *struct {
			Requests *int32  `json:"requests,omitempty"`
			Time     *string `json:"time,omitempty"`
			Timeout  *struct {
				Server *string `json:"server,omitempty"`
				Header *string `json:"header,omitempty"`
			} `json:"timeout,omitempty"`
			MinTimeout *string `json:"minTimeout,omitempty"`
		} `json:"keepAlive,omitempty"`
	} `json:"spec"`
}

func (p *ClientSettingsPolicy) validate() error {
	if err := validTargets([]ngfTarget{p.Spec.TargetRef}); err != nil {
		return err
	}
	if b := p.Spec.Body; b != nil {
		if b.MaxSize != nil && !ngfSize.MatchString(*b.MaxSize) {
			return fmt.Errorf("spec.body.maxSize %q is not an NGINX size", *b.MaxSize)
		}
		if b.Timeout != nil && !ngfDuration.MatchString(*b.Timeout) {
			return fmt.Errorf("spec.body.timeout %q is not an NGINX duration", *b.Timeout)
		}
	}
	return nil
}

// ProxySettingsPolicy is NGINX Gateway Fabric's gateway.nginx.org/v1alpha1 ProxySettingsPolicy.
type ProxySettingsPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		TargetRefs []ngfTarget `json:"targetRefs"`
		Buffering  *struct {
			Disable         *bool   `json:"disable,omitempty"`
			BufferSize      *string `json:"bufferSize,omitempty"`
			BusyBuffersSize *string `json:"busyBuffersSize,omitempty"`
			Buffers         *struct {
				Size   string `json:"size"`
				Number int32  `json:"number"`
			} `json:"buffers,omitempty"`
		} `json:"buffering,omitempty"`
	} `json:"spec"`
}

func (p *ProxySettingsPolicy) validate() error { return validTargets(p.Spec.TargetRefs) }

// RateLimitPolicy is NGINX Gateway Fabric's gateway.nginx.org/v1alpha1 RateLimitPolicy.
type RateLimitPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		TargetRefs []ngfTarget `json:"targetRefs"`
		RateLimit  *struct {
			Local *struct {
				Rules []RateLimitRule `json:"rules,omitempty"`
			} `json:"local,omitempty"`
		} `json:"rateLimit,omitempty"`
	} `json:"spec"`
}

// RateLimitRule is one limit_req rule of a RateLimitPolicy.
type RateLimitRule struct {
	ZoneSize   *string `json:"zoneSize,omitempty"`
	Delay      *int32  `json:"delay,omitempty"`
	NoDelay    *bool   `json:"noDelay,omitempty"`
	Burst      *int32  `json:"burst,omitempty"`
	DryRun     *bool   `json:"dryRun,omitempty"`
	LogLevel   *string `json:"logLevel,omitempty"`
	RejectCode *int32  `json:"rejectCode,omitempty"`
	Rate       string  `json:"rate"`
	Key        string  `json:"key"`
}

var ngfRate = regexp.MustCompile(`^\d+r/[sm]$`)

func (p *RateLimitPolicy) validate() error {
	if err := validTargets(p.Spec.TargetRefs); err != nil {
		return err
	}
	if p.Spec.RateLimit == nil || p.Spec.RateLimit.Local == nil {
		return nil
	}
	for i, r := range p.Spec.RateLimit.Local.Rules {
		if !ngfRate.MatchString(r.Rate) || r.Key == "" {
			return fmt.Errorf("rule %d: rate %q must be N r/s or r/m and key is required", i, r.Rate)
		}
		if r.RejectCode != nil && (*r.RejectCode < 400 || *r.RejectCode > 599) {
			return fmt.Errorf("rule %d: rejectCode %d is not 4xx or 5xx", i, *r.RejectCode)
		}
	}
	return nil
}

// NginxProxy is the part of NGINX Gateway Fabric's gateway.nginx.org/v1alpha2 NginxProxy that
// v2m uses.
type NginxProxy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		RewriteClientIP *struct {
			Mode             *string `json:"mode,omitempty"`
			SetIPRecursively *bool   `json:"setIPRecursively,omitempty"`
			TrustedAddresses []struct {
				Type  string `json:"type"`
				Value string `json:"value"`
			} `json:"trustedAddresses,omitempty"`
		} `json:"rewriteClientIP,omitempty"`
		Kubernetes *struct {
			Service *struct {
				Type                     *string  `json:"type,omitempty"`
				ExternalTrafficPolicy    *string  `json:"externalTrafficPolicy,omitempty"`
				LoadBalancerClass        *string  `json:"loadBalancerClass,omitempty"`
				LoadBalancerSourceRanges []string `json:"loadBalancerSourceRanges,omitempty"`
			} `json:"service,omitempty"`
			Deployment *struct {
				Replicas *int32 `json:"replicas,omitempty"`
				Pod      struct {
					TerminationGracePeriodSeconds *int64                            `json:"terminationGracePeriodSeconds,omitempty"`
					NodeSelector                  map[string]string                 `json:"nodeSelector,omitempty"`
					TopologySpreadConstraints     []corev1.TopologySpreadConstraint `json:"topologySpreadConstraints,omitempty"`
				} `json:"pod"`
				Container struct {
					Lifecycle *corev1.Lifecycle            `json:"lifecycle,omitempty"`
					Resources *corev1.ResourceRequirements `json:"resources,omitempty"`
				} `json:"container"`
			} `json:"deployment,omitempty"`
		} `json:"kubernetes,omitempty"`
	} `json:"spec"`
}

func (p *NginxProxy) validate() error {
	if r := p.Spec.RewriteClientIP; r != nil && r.Mode != nil {
		if *r.Mode != "ProxyProtocol" && *r.Mode != "XForwardedFor" {
			return fmt.Errorf("spec.rewriteClientIP.mode %q is neither ProxyProtocol nor XForwardedFor", *r.Mode)
		}
		if len(r.TrustedAddresses) == 0 {
			return errors.New("spec.rewriteClientIP: trustedAddresses is required with a mode")
		}
	}
	return nil
}

// certIssuerRef is cert-manager's issuer reference.
type certIssuerRef struct {
	Group string `json:"group,omitempty"`
	Kind  string `json:"kind,omitempty"`
	Name  string `json:"name"`
}

// Certificate is the part of cert-manager's cert-manager.io/v1 Certificate that v2m uses.
type Certificate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SecretName string        `json:"secretName"`
		DNSNames   []string      `json:"dnsNames"`
		IssuerRef  certIssuerRef `json:"issuerRef"`
		PrivateKey *struct {
			Algorithm      string `json:"algorithm,omitempty"`
			Size           int    `json:"size,omitempty"`
			RotationPolicy string `json:"rotationPolicy,omitempty"`
		} `json:"privateKey,omitempty"`
	} `json:"spec"`
}

func (c *Certificate) validate() error {
	if c.Spec.SecretName == "" || len(c.Spec.DNSNames) == 0 || c.Spec.IssuerRef.Name == "" {
		return errors.New("spec.secretName, spec.dnsNames and spec.issuerRef.name are required")
	}
	return nil
}

// ClusterIssuer is the part of cert-manager's cert-manager.io/v1 ClusterIssuer (ACME) that
// v2m uses.
type ClusterIssuer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		ACME *struct {
			Server              string `json:"server"`
			Email               string `json:"email"`
			PrivateKeySecretRef struct {
				Name string `json:"name"`
			} `json:"privateKeySecretRef"`
			Solvers []struct {
				DNS01 *struct {
					Route53 *struct {
						Region       string `json:"region"`
						HostedZoneID string `json:"hostedZoneID,omitempty"`
						Role         string `json:"role,omitempty"`
					} `json:"route53,omitempty"`
				} `json:"dns01,omitempty"`
				HTTP01   map[string]any `json:"http01,omitempty"`
				Selector *struct {
					DNSZones []string `json:"dnsZones,omitempty"`
				} `json:"selector,omitempty"`
			} `json:"solvers"`
		} `json:"acme,omitempty"`
	} `json:"spec"`
}

func (c *ClusterIssuer) validate() error {
	if c.Spec.ACME == nil || c.Spec.ACME.Server == "" || len(c.Spec.ACME.Solvers) == 0 {
		return errors.New("spec.acme with a server and solvers is required")
	}
	return nil
}
