// Package jsonpatch is the JSON patch machinery: it turns an evaluated
// JSONPatch expression into operations and applies them to a decoded object
// with the result Kubernetes' patcher gives (Patcher), and computes the
// patch between two decoded objects (CreatePatch). Pure functions of their
// input; it imports no other package of this module.
package jsonpatch
