// Package cluster keeps the engine loaded with the cluster's policies: a
// controller that reloads the engine whenever a MutatingPolicy or
// ValidatingPolicy object changes, with the built-in and file policies, and
// writes each object's state (Ready, its problems) in its status. It imports
// ../engine and what is below it.
package cluster
