package agent

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// PodDeparture reads this pod and its StatefulSet from the API server. The pod
// leaves for good when its ordinal is at or above the StatefulSet's replicas
// (a scale-down); on a restart or rolling update it is below. It also returns
// the pod's grace period, which bounds how long a decommission may take.
func PodDeparture(ctx context.Context, kube kubernetes.Interface, namespace, podName string) (Departure, time.Duration, error) {
	pod, err := kube.CoreV1().Pods(namespace).Get(ctx, podName, metav1.GetOptions{})
	if err != nil {
		return Departure{}, 0, fmt.Errorf("reading pod %s/%s: %w", namespace, podName, err)
	}
	grace := 30 * time.Second
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	owner := metav1.GetControllerOf(pod)
	if owner == nil || owner.Kind != "StatefulSet" {
		return Departure{Reason: fmt.Sprintf("pod %s/%s does not belong to a StatefulSet", namespace, podName)}, grace, nil
	}
	i := strings.LastIndex(podName, "-")
	ordinal, err := strconv.Atoi(podName[i+1:])
	if i < 0 || err != nil {
		return Departure{}, grace, fmt.Errorf("pod name %s does not end in a StatefulSet ordinal", podName)
	}
	sts, err := kube.AppsV1().StatefulSets(namespace).Get(ctx, owner.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return Departure{Reason: fmt.Sprintf("StatefulSet %s/%s is being deleted as a whole: no BE is left to take the data", namespace, owner.Name)}, grace, nil
	}
	if err != nil {
		return Departure{}, grace, fmt.Errorf("reading StatefulSet %s/%s: %w", namespace, owner.Name, err)
	}
	replicas := int32(1)
	if sts.Spec.Replicas != nil {
		replicas = *sts.Spec.Replicas
	}
	if sts.DeletionTimestamp != nil {
		return Departure{Reason: fmt.Sprintf("StatefulSet %s/%s is being deleted as a whole: no BE is left to take the data", namespace, owner.Name)}, grace, nil
	}
	if int32(ordinal) < replicas {
		return Departure{Reason: fmt.Sprintf("pod %s is ordinal %d of %d replicas of StatefulSet %s: a restart or rolling update", podName, ordinal, replicas, owner.Name)}, grace, nil
	}
	return Departure{Leaving: true, Reason: fmt.Sprintf("pod %s is ordinal %d and StatefulSet %s now has %d replicas", podName, ordinal, owner.Name, replicas)}, grace, nil
}
