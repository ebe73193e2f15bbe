package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Cluster reads this pod and its StatefulSet from the API server. It reads
// only the fields it needs, into types of its own: the typed clients and
// k8s.io/api would make the agent that every Doris pod carries several times
// bigger.
type Cluster struct {
	client rest.Interface
}

// NewCluster connects with the kubeconfig file when one is given, else with
// the pod's service account; timeout bounds each request.
func NewCluster(kubeconfig string, timeout time.Duration) (*Cluster, error) {
	cfg, err := rest.InClusterConfig()
	if kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	}
	if err != nil {
		return nil, fmt.Errorf("finding the API server (give --kubeconfig outside a pod): %w", err)
	}
	// The API server's Status, for errors that say NotFound or Forbidden.
	scheme := runtime.NewScheme()
	metav1.AddToGroupVersion(scheme, schema.GroupVersion{Version: "v1"})
	cfg.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
	cfg.Timeout, cfg.UserAgent = timeout, "doris-admission-agent"
	client, err := rest.UnversionedRESTClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("configuring the API client: %w", err)
	}
	return &Cluster{client: client}, nil
}

// pod is the part of a Pod the agent reads.
type pod struct {
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		TerminationGracePeriodSeconds *int64 `json:"terminationGracePeriodSeconds"`
	} `json:"spec"`
}

// statefulSet is the part of a StatefulSet the agent reads.
type statefulSet struct {
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Replicas *int32 `json:"replicas"`
		Ordinals *struct {
			Start int32 `json:"start"`
		} `json:"ordinals"`
	} `json:"spec"`
}

// read GETs path into v, trying again on what may pass (timeouts, a busy or
// unreachable API server) until ctx ends. Not found, forbidden and the like
// are answers, returned at once.
func (c *Cluster) read(ctx context.Context, p Pacing, path string, v any) error {
	return p.Retry(ctx, "reading "+path, func(ctx context.Context) error {
		raw, err := c.client.Get().AbsPath(path).Do(ctx).Raw()
		switch {
		case apierrors.IsNotFound(err) || apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) || apierrors.IsBadRequest(err):
			return permanent{err}
		case err != nil:
			return err
		}
		if err := json.Unmarshal(raw, v); err != nil {
			return permanent{fmt.Errorf("reading %s: %w", path, err)}
		}
		return nil
	})
}

// Departure says whether this pod is leaving its StatefulSet for good.
type Departure struct {
	Leaving bool
	// Reason says why, for the log.
	Reason string
	// StopAt is when the kubelet kills the container: the pod's deletion
	// timestamp, which its grace period set.
	StopAt time.Time
}

// PodDeparture reads this pod and its StatefulSet, every read bounded by
// ctx. The pod leaves for good only when it is being deleted and its
// ordinal is outside the ones the StatefulSet keeps: start (spec.ordinals)
// up to start+replicas-1. A restart, a rolling update or an eviction keeps
// the ordinal; a StatefulSet scaled to 0 or deleted as a whole takes every
// BE, and a decommission needs BEs that stay to take the data, so those are
// stops, not departures: the BEs keep their data on their volumes.
func PodDeparture(ctx context.Context, c *Cluster, p Pacing, namespace, podName string) (Departure, error) {
	var po pod
	if err := c.read(ctx, p, fmt.Sprintf("/api/v1/namespaces/%s/pods/%s", namespace, podName), &po); err != nil {
		return Departure{}, fmt.Errorf("reading pod %s/%s: %w", namespace, podName, err)
	}
	d := Departure{StopAt: stopAt(po)}
	owner := metav1.GetControllerOf(&po.ObjectMeta)
	switch {
	case po.DeletionTimestamp == nil:
		d.Reason = fmt.Sprintf("pod %s/%s is not being deleted: its container is restarting", namespace, podName)
		return d, nil
	case owner == nil || owner.Kind != "StatefulSet":
		d.Reason = fmt.Sprintf("pod %s/%s does not belong to a StatefulSet", namespace, podName)
		return d, nil
	}
	i := strings.LastIndex(podName, "-")
	ordinal, err := strconv.Atoi(podName[i+1:])
	if i < 0 || err != nil {
		return d, fmt.Errorf("pod name %s does not end in a StatefulSet ordinal", podName)
	}
	var sts statefulSet
	err = c.read(ctx, p, fmt.Sprintf("/apis/apps/v1/namespaces/%s/statefulsets/%s", namespace, owner.Name), &sts)
	if apierrors.IsNotFound(err) || (err == nil && sts.DeletionTimestamp != nil) {
		d.Reason = fmt.Sprintf("StatefulSet %s/%s is being deleted as a whole: no BE stays to take the data, so every BE keeps its own", namespace, owner.Name)
		return d, nil
	}
	if err != nil {
		return d, fmt.Errorf("reading StatefulSet %s/%s: %w", namespace, owner.Name, err)
	}
	d.Leaving, d.Reason = departs(sts, podName, int32(ordinal))
	return d, nil
}

// departs decides from the StatefulSet's replicas and ordinals.start.
func departs(sts statefulSet, podName string, ordinal int32) (bool, string) {
	replicas, start := int32(1), int32(0)
	if sts.Spec.Replicas != nil {
		replicas = *sts.Spec.Replicas
	}
	if sts.Spec.Ordinals != nil {
		start = sts.Spec.Ordinals.Start
	}
	switch {
	case replicas == 0:
		return false, fmt.Sprintf("StatefulSet %s is scaled to 0: the whole cluster stops, no BE stays to take the data, so every BE keeps its own and rejoins when scaled up again", sts.Name)
	case ordinal >= start && ordinal < start+replicas:
		return false, fmt.Sprintf("pod %s is ordinal %d, one StatefulSet %s keeps (%s): a restart, rolling update or eviction", podName, ordinal, sts.Name, kept(start, replicas))
	}
	return true, fmt.Sprintf("pod %s is ordinal %d and StatefulSet %s now keeps %s", podName, ordinal, sts.Name, kept(start, replicas))
}

func kept(start, replicas int32) string {
	if replicas == 1 {
		return fmt.Sprintf("ordinal %d", start)
	}
	return fmt.Sprintf("ordinals %d to %d", start, start+replicas-1)
}

// stopAt is when the kubelet kills the pod's containers.
func stopAt(po pod) time.Time {
	if po.DeletionTimestamp != nil {
		return po.DeletionTimestamp.Time
	}
	grace := int64(30)
	if po.Spec.TerminationGracePeriodSeconds != nil {
		grace = *po.Spec.TerminationGracePeriodSeconds
	}
	return time.Now().Add(time.Duration(grace) * time.Second)
}
