package webhook

import "net/http"

// closeWhenDraining asks clients to close their connection after each
// response while the server drains before it stops: no keep-alive
// connection is idle when the listener closes, so no request the API server
// sends on one at that moment is lost.
func closeWhenDraining(draining func() bool, next http.Handler) http.Handler {
	if draining == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if draining() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
}
