// Package v1alpha1 holds the policy kinds of doris-admission: MutatingPolicy
// and ValidatingPolicy in the policies.doris-admission.io group. Their specs are
// the native admissionregistration.k8s.io/v1 MutatingAdmissionPolicy and
// ValidatingAdmissionPolicy specs, field by field, with the binding's settings
// folded in, so a policy written for one reads the same in the other.
//
// +kubebuilder:object:generate=true
// +groupName=policies.doris-admission.io
package v1alpha1
