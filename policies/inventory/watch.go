package inventory

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// WatchServices keeps n equal to the Services in informers, and marks it
// synced once the informer has delivered every existing Service. It reads
// them from the unstructured informer the policies' lookups read too, so
// the server holds each Service once.
func WatchServices(ctx context.Context, informers cache.Informers, n *NodePorts) (manager.Runnable, error) {
	probe := &unstructured.Unstructured{}
	probe.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Service"))
	informer, err := informers.GetInformer(ctx, probe)
	if err != nil {
		return nil, fmt.Errorf("watching Services: %w", err)
	}
	registration, err := informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { set(ctx, n, obj) },
		UpdateFunc: func(_, obj any) { set(ctx, n, obj) },
		DeleteFunc: func(obj any) {
			if tombstone, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = tombstone.Obj
			}
			if svc, ok := obj.(*unstructured.Unstructured); ok {
				n.Delete(svc.GetNamespace(), svc.GetName())
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("watching Services: %w", err)
	}
	// Runs with the manager: waits for the first full list, then says so.
	return manager.RunnableFunc(func(ctx context.Context) error {
		if !toolscache.WaitForCacheSync(ctx.Done(), registration.HasSynced) {
			return nil
		}
		n.MarkSynced()
		<-ctx.Done()
		return nil
	}), nil
}

// set indexes the node ports of a Service the informer delivered.
func set(ctx context.Context, n *NodePorts, obj any) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return
	}
	svc := &corev1.Service{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, svc); err != nil {
		// The API server sent it: it is a Service. Should it ever not be,
		// its ports stay as they were, and the log says which one.
		log.FromContext(ctx).Error(err, "reading the node ports of a Service: it is not a Service as this server knows one; its node ports stay as they were", "namespace", u.GetNamespace(), "name", u.GetName())
		return
	}
	n.Set(svc)
}
