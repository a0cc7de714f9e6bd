package validate

import (
	"errors"
	"fmt"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// crd is a custom resource type decoded strictly and checked for its required fields.
type crd interface{ validate() error }

// crdKinds are the custom resources the manifests may contain, by apiVersion/kind.
var crdKinds = map[string]func() crd{
	"keda.sh/v1alpha1/ScaledObject":          func() crd { return new(ScaledObject) },
	"keda.sh/v1alpha1/TriggerAuthentication": func() crd { return new(TriggerAuthentication) },
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
