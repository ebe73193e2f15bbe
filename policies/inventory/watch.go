package inventory

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// WatchServices keeps n equal to the Services in informers, and marks it
// synced once the informer has delivered every existing Service.
func WatchServices(ctx context.Context, informers cache.Informers, n *NodePorts) (manager.Runnable, error) {
	informer, err := informers.GetInformer(ctx, &corev1.Service{})
	if err != nil {
		return nil, fmt.Errorf("watching Services: %w", err)
	}
	registration, err := informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { set(n, obj) },
		UpdateFunc: func(_, obj any) { set(n, obj) },
		DeleteFunc: func(obj any) {
			if tombstone, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = tombstone.Obj
			}
			if svc, ok := obj.(*corev1.Service); ok {
				n.Delete(svc.Namespace, svc.Name)
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

func set(n *NodePorts, obj any) {
	if svc, ok := obj.(*corev1.Service); ok {
		n.Set(svc)
	}
}
