// Package validate renders the kustomize overlays of v2m and checks the objects offline:
// strict decoding against the Kubernetes API types, the hardening every workload needs, and
// drift between the Deployments and the settings that `v2md describe` declares.
package validate

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	rabbitmqv1beta1 "github.com/rabbitmq/cluster-operator/v2/api/v1beta1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	yamlutil "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// Object is one rendered Kubernetes object.
type Object struct {
	APIVersion string
	Kind       string
	Namespace  string
	Name       string
	// YAML is the object as rendered.
	YAML []byte
	// Typed is the decoded object: a client-go API type, or one of this package's CRD types
	// (*ScaledObject, *TriggerAuthentication).
	Typed any
}

// ID names the object as kind/namespace/name.
func (o Object) ID() string {
	if o.Namespace == "" {
		return o.Kind + "/" + o.Name
	}
	return o.Kind + "/" + o.Namespace + "/" + o.Name
}

// Render builds the kustomization in dir with the kustomize API (krusty) and returns the
// multi-document YAML.
func Render(dir string) ([]byte, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	out, err := m.AsYaml()
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: encode: %w", dir, err)
	}
	return out, nil
}

// RenderKubectl builds the kustomization in dir with `kubectl kustomize`.
func RenderKubectl(ctx context.Context, kubectl, dir string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, kubectl, "kustomize", dir)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("kubectl kustomize %s: %w: %s", dir, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// SplitYAML splits a multi-document YAML stream into its non-empty documents.
func SplitYAML(data []byte) ([][]byte, error) {
	r := yamlutil.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("split yaml: %w", err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		docs = append(docs, doc)
	}
}

func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) == 0 || t[0] == '#' || string(t) == "---" {
			continue
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// strictCodecs decodes every type registered in client-go's scheme, the Gateway API (v1),
// the Prometheus Operator's monitoring.coreos.com/v1 and the RabbitMQ Cluster Operator's
// rabbitmq.com/v1beta1, with their own Go types, and fails on unknown or duplicate fields.
var strictCodecs = serializer.NewCodecFactory(typedScheme(), serializer.EnableStrict)

func typedScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		scheme.AddToScheme, gatewayv1.Install, monitoringv1.AddToScheme, rabbitmqv1beta1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(fmt.Sprintf("validate: build the scheme: %v", err)) // a programming error, at init
		}
	}
	return s
}

// Decode decodes every document strictly. Built-in kinds, the Gateway API, PodMonitors and
// RabbitmqClusters are decoded into their projects' Go types; the CRDs whose modules are not
// available (KEDA, NGINX Gateway Fabric, cert-manager) into this package's types.
// Any unknown field, wrong type, unknown kind or missing name is a problem.
func Decode(data []byte) ([]Object, []Problem) {
	docs, err := SplitYAML(data)
	if err != nil {
		return nil, []Problem{{Object: "-", Rule: "yaml", Msg: err.Error()}}
	}
	var objs []Object
	var probs []Problem
	for i, doc := range docs {
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			probs = append(probs, Problem{Object: fmt.Sprintf("document %d", i), Rule: "yaml", Msg: err.Error()})
			continue
		}
		o := Object{APIVersion: meta.APIVersion, Kind: meta.Kind, Name: meta.Metadata.Name,
			Namespace: meta.Metadata.Namespace, YAML: doc}
		if o.Kind == "" || o.APIVersion == "" || o.Name == "" {
			probs = append(probs, Problem{Object: fmt.Sprintf("document %d", i), Rule: "decode",
				Msg: "apiVersion, kind and metadata.name are required"})
			continue
		}
		typed, err := decodeOne(o.APIVersion, o.Kind, doc)
		if err != nil {
			probs = append(probs, Problem{Object: o.ID(), Rule: "decode", Msg: err.Error()})
			continue
		}
		o.Typed = typed
		objs = append(objs, o)
	}
	return objs, probs
}

func decodeOne(apiVersion, kind string, doc []byte) (any, error) {
	if newCRD, ok := crdKinds[apiVersion+"/"+kind]; ok {
		v := newCRD()
		if err := yaml.UnmarshalStrict(doc, v); err != nil {
			return nil, fmt.Errorf("strict decode %s %s: %w", apiVersion, kind, err)
		}
		if err := v.validate(); err != nil {
			return nil, fmt.Errorf("%s: %w", kind, err)
		}
		return v, nil
	}
	obj, _, err := strictCodecs.UniversalDeserializer().Decode(doc, nil, nil)
	if err != nil {
		// Strict errors come with a decoded object: they are problems all the same.
		return nil, fmt.Errorf("strict decode %s %s: %w", apiVersion, kind, err)
	}
	if _, isUnknown := obj.(*runtime.Unknown); isUnknown {
		return nil, fmt.Errorf("kind %s %s is not a known API type", apiVersion, kind)
	}
	return obj, nil
}
