package v1alpha1

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ValidatingPolicy checks objects with CEL validations, cluster-wide. Its spec
// is a native ValidatingAdmissionPolicy spec with the binding's validation
// actions and parameter reference folded in.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=vpol,categories=doris-admission
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Actions",type=string,JSONPath=`.spec.validationActions`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ValidatingPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ValidatingPolicySpec `json:"spec"`
	Status PolicyStatus         `json:"status,omitempty"`
}

// ValidatingPolicySpec is what a ValidatingPolicy checks and what it does when
// a check fails. The fields are those of a native ValidatingAdmissionPolicySpec,
// plus the binding's validationActions and paramRef.
type ValidatingPolicySpec struct {
	// paramKind names the kind of the parameter objects, as in a native policy.
	// +optional
	ParamKind *admissionregistrationv1.ParamKind `json:"paramKind,omitempty"`

	// matchConstraints says which requests the policy applies to, as in a native policy.
	// +optional
	MatchConstraints *admissionregistrationv1.MatchResources `json:"matchConstraints,omitempty"`

	// validations are the CEL expressions that must all hold.
	// +optional
	// +listType=atomic
	Validations []Validation `json:"validations,omitempty"`

	// failurePolicy says what happens when an expression cannot be evaluated:
	// Fail (default) counts it as a failed validation, Ignore skips it.
	// +optional
	FailurePolicy *admissionregistrationv1.FailurePolicyType `json:"failurePolicy,omitempty"`

	// auditAnnotations add audit annotations to the request's audit event.
	// +optional
	// +listType=atomic
	AuditAnnotations []admissionregistrationv1.AuditAnnotation `json:"auditAnnotations,omitempty"`

	// matchConditions must all be true for the policy to apply, as in a native policy.
	// +optional
	// +listType=map
	// +listMapKey=name
	MatchConditions []admissionregistrationv1.MatchCondition `json:"matchConditions,omitempty"`

	// variables are named CEL expressions the other expressions read as variables.<name>.
	// +optional
	// +listType=atomic
	Variables []admissionregistrationv1.Variable `json:"variables,omitempty"`

	// validationActions says what a failed validation does: Deny rejects the
	// request, Warn returns a warning to the client, Audit records an audit
	// annotation. Deny and Warn may not be used together. Default: [Deny].
	// +optional
	// +listType=set
	// +kubebuilder:validation:items:Enum=Deny;Warn;Audit
	ValidationActions []admissionregistrationv1.ValidationAction `json:"validationActions,omitempty"`

	// paramRef selects the parameter object(s) of paramKind, as in a native binding.
	// +optional
	ParamRef *admissionregistrationv1.ParamRef `json:"paramRef,omitempty"`
}

// Validation is a native admission policy validation with the field it is
// about, so a failure names where the object is wrong.
type Validation struct {
	// expression must evaluate to true for the object to pass, as in a native policy.
	Expression string `json:"expression"`

	// message is returned when the validation fails.
	// +optional
	Message string `json:"message,omitempty"`

	// reason is the status reason of a denial. Default: Invalid.
	// +optional
	Reason *metav1.StatusReason `json:"reason,omitempty"`

	// messageExpression computes the message; it wins over message when it
	// evaluates to a non-empty string.
	// +optional
	MessageExpression string `json:"messageExpression,omitempty"`

	// fieldPath is the field of the object a failure is reported on, such as
	// spec.replicas or spec.ports[0].nodePort. Default: the object itself.
	// +optional
	FieldPath string `json:"fieldPath,omitempty"`
}

// ValidatingPolicyList is a list of ValidatingPolicy.
//
// +kubebuilder:object:root=true
type ValidatingPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ValidatingPolicy `json:"items"`
}

// MutatingPolicy changes objects with CEL mutations, cluster-wide. Its spec is
// a native MutatingAdmissionPolicy spec with the binding's parameter reference
// folded in.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=mpol,categories=doris-admission
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type MutatingPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   MutatingPolicySpec `json:"spec"`
	Status PolicyStatus       `json:"status,omitempty"`
}

// MutatingPolicySpec is what a MutatingPolicy matches and how it changes it:
// a native MutatingAdmissionPolicySpec, the binding's paramRef, and the
// objects it makes sure exist beside the ones it matches (generate). With
// generate, mutations may be empty.
type MutatingPolicySpec struct {
	admissionregistrationv1.MutatingAdmissionPolicySpec `json:",inline"`

	// paramRef selects the parameter object(s) of paramKind, as in a native binding.
	// +optional
	ParamRef *admissionregistrationv1.ParamRef `json:"paramRef,omitempty"`

	// generate lists objects that must exist beside each object the policy
	// matches. The server creates one when it is missing, in the matched
	// object's namespace and owned by it (so it goes when the object goes),
	// and never changes or deletes an object that exists. Native admission
	// policies cannot do this: policy export leaves it out and says so.
	// +optional
	// +listType=map
	// +listMapKey=name
	Generate []Generation `json:"generate,omitempty"`
}

// Generation is one object a MutatingPolicy makes sure exists.
type Generation struct {
	// name names the generation in messages and in the
	// policies.doris-admission.io/generated-by annotation of what it creates.
	Name string `json:"name"`

	// expression is a CEL expression, with the same variables as the
	// mutations, whose value is the object to create (apiVersion, kind,
	// metadata.name, and the rest), or null when none is needed.
	Expression string `json:"expression"`
}

// MutatingPolicyList is a list of MutatingPolicy.
//
// +kubebuilder:object:root=true
type MutatingPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MutatingPolicy `json:"items"`
}

// PolicyStatus reports whether the server has loaded a policy and what it
// found wrong with it.
type PolicyStatus struct {
	// observedGeneration is the generation the server last compiled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready is True when every expression compiled and the policy
	// is enforced; its message names what failed otherwise.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// typeChecking lists the expressions that failed to compile or type-check,
	// with the field that holds each.
	// +optional
	TypeChecking *admissionregistrationv1.TypeChecking `json:"typeChecking,omitempty"`

	// audit is what the last background scan found among the objects that
	// already exist: how many the policy fails, as listed in the PolicyReports.
	// +optional
	Audit *AuditStatus `json:"audit,omitempty"`
}

// AuditStatus counts the existing objects a policy passes and fails.
type AuditStatus struct {
	// violations is how many existing objects fail the policy (for a
	// MutatingPolicy: lack what it would add).
	Violations int32 `json:"violations"`
	// warnings is how many fail a validation whose action is Warn.
	// +optional
	Warnings int32 `json:"warnings,omitempty"`
	// passes is how many match the policy and pass it.
	Passes int32 `json:"passes"`
	// lastScan is when these counts were taken.
	LastScan metav1.Time `json:"lastScan"`
}

// ConditionReady is the condition type that says a policy is enforced.
const ConditionReady = "Ready"
