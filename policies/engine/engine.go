package engine

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/admission/plugin/policy/matching"
	"k8s.io/apiserver/pkg/cel/environment"
	"k8s.io/client-go/applyconfigurations"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/api/v1alpha1"
	"github.com/doris-admission/doris-admission/policies/builtin"
	"github.com/doris-admission/doris-admission/policies/compile"
	"github.com/doris-admission/doris-admission/policies/inventory"
	"github.com/doris-admission/doris-admission/policies/source"
)

// Engine evaluates the loaded policies against requests. Load swaps the
// policy set atomically; evaluation never waits for a load.
type Engine struct {
	mapper     meta.RESTMapper
	matcher    *matching.Matcher
	interfaces admission.ObjectInterfaces
	converter  managedfields.TypeConverter
	checker    *compile.TypeChecker
	// objects are the cluster's objects, with the built-in settings.
	objects source.ObjectSource
	// envSet is the CEL environment, with functions that read objects.
	envSet *environment.EnvSet
	// nodePorts is the node port index the CEL functions read.
	nodePorts *inventory.NodePorts

	// reinvokeOnAnyChange turns off the read analysis of reinvocation, for
	// the test that compares the two.
	reinvokeOnAnyChange bool

	// unnamed numbers the admitted Services named by generateName.
	unnamed atomic.Int64
	// paramKinds are the kinds CheckParams has waited for once.
	paramKinds sync.Map

	loadMu  sync.Mutex
	byKey   map[compileKey]*compile.Compiled
	current atomic.Pointer[policySet]
}

// policySet is the enforced policies, in evaluation order.
type policySet struct {
	// mutating are the policies that change objects at admission; a policy
	// that only generates is not among them.
	mutating   []*compile.Compiled
	validating []*compile.Compiled
	// generating are the policies with spec.generate, evaluated after
	// admission (generate.go).
	generating []*compile.Compiled
	// mutatingResources and validatingResources are the resources some
	// policy of each list may match, so a request no policy can match is
	// answered without looking at any.
	mutatingResources, validatingResources compile.ResourceNames
	// groups are the IDs of the policies' webhook groups.
	groups map[string]bool
	// kinds are the kinds of the resources the policies name exactly, and
	// of the policy objects: the only kinds the metrics count by.
	kinds map[schema.GroupVersionResource]string
}

// compileKey identifies one generation of one policy from one origin.
type compileKey struct {
	kind, name, origin string
	generation         int64
}

// NewEngine returns an engine with no policies loaded.
func NewEngine(cfg source.Config) *Engine {
	e := &Engine{
		mapper:     cfg.Mapper,
		matcher:    matching.NewMatcher(cfg.Namespaces, cfg.Client),
		interfaces: admission.NewObjectInterfacesFromScheme(clientgoscheme.Scheme),
		converter:  applyconfigurations.NewTypeConverter(clientgoscheme.Scheme),
		objects:    newWithSettings(cfg.Objects, cmp.Or(cfg.Namespace, builtin.DefaultNamespace), cfg.Settings),
		nodePorts:  cfg.NodePorts,
		byKey:      map[compileKey]*compile.Compiled{},
	}
	envSet, err := compile.EnvSet(clusterObjects{e.objects}, cfg.NodePorts)
	if err != nil {
		panic("the CEL environment does not build: " + err.Error())
	}
	e.envSet = envSet
	e.checker = compile.NewTypeChecker(envSet, cfg.Schemas, cfg.Mapper)
	e.current.Store(&policySet{})
	return e
}

// Loaded is a policy as the engine holds it, with what is wrong with it.
type Loaded struct {
	policies.Policy
	// Problems are the expressions that do not compile or type-check; the
	// policy is enforced, and each of these fails per its failurePolicy.
	Problems []compile.ExpressionError
	// Costs are the estimated worst-case costs of the expressions, where the
	// matched kinds' schemas are known. They are not a gate: an expression
	// fails at run time only on an object that makes it that expensive.
	Costs []compile.ExpressionCost
	// Kinds are the resources the policy's rules name, for listings.
	Resources []string
}

// Load compiles the policies that are new or changed (by generation), reuses
// the others, and makes exactly these the enforced set. It returns them in
// evaluation order: built-in policies first, then by name.
func (e *Engine) Load(list []policies.Policy) []Loaded {
	e.loadMu.Lock()
	defer e.loadMu.Unlock()
	sorted := slices.Clone(list)
	slices.SortStableFunc(sorted, policies.Compare)
	next := &policySet{}
	byKey := make(map[compileKey]*compile.Compiled, len(sorted))
	loaded := make([]Loaded, 0, len(sorted))
	for _, p := range sorted {
		key := compileKey{p.Kind(), p.Name(), p.Origin, p.Generation()}
		c, ok := e.byKey[key]
		if !ok {
			c = compile.Policy(p, e.envSet, e.checker)
		}
		byKey[key] = c
		switch {
		case p.Mutating != nil:
			if len(c.Generators) > 0 {
				next.generating = append(next.generating, c)
			}
			if len(c.Patchers) > 0 || len(c.Generators) == 0 {
				next.mutating = append(next.mutating, c)
			}
		default:
			next.validating = append(next.validating, c)
		}
		loaded = append(loaded, Loaded{Policy: p, Problems: c.Problems, Costs: c.Costs, Resources: resourcesOf(p)})
	}
	next.mutatingResources = compile.UnionResourceNames(next.mutating)
	next.validatingResources = compile.UnionResourceNames(next.validating)
	next.kinds = e.kindsOf(slices.Concat(next.mutating, next.validating))
	next.groups = map[string]bool{}
	for _, c := range slices.Concat(next.mutating, next.validating) {
		next.groups[c.Group] = true
	}
	e.byKey = byKey
	e.current.Store(next)
	return loaded
}

// resourcesOf lists the resources p's rules name, as group/resource.
func resourcesOf(p policies.Policy) []string {
	m := p.MatchConstraints()
	if m == nil {
		return nil
	}
	var out []string
	for _, rule := range m.ResourceRules {
		for _, group := range rule.APIGroups {
			for _, res := range rule.Resources {
				name := res
				if group != "" {
					name = res + "." + group
				}
				if !slices.Contains(out, name) {
					out = append(out, name)
				}
			}
		}
	}
	return out
}

// match reports whether c applies to req, and the versioned attributes to
// evaluate it on (created on first use, shared by the policies of a request).
func (e *Engine) match(c *compile.Compiled, req *Request, versioned **admission.VersionedAttributes) (bool, schema.GroupVersionResource, error) {
	// The matcher would say no (without an error) to a resource none of the
	// policy's rules names.
	if !c.Criteria.Names.MayMatch(req.GetResource().Resource) {
		return false, schema.GroupVersionResource{}, nil
	}
	ok, gvr, gvk, err := e.matcher.Matches(req, e.interfaces, c.Criteria)
	if err != nil || !ok {
		return false, gvr, err
	}
	if *versioned == nil {
		if *versioned, err = admission.NewVersionedAttributes(req, gvk, e.interfaces); err != nil {
			return false, gvr, fmt.Errorf("converting the object to %s: %w", gvk, err)
		}
	} else if err := admission.ConvertVersionedAttributes(*versioned, gvk, e.interfaces); err != nil {
		return false, gvr, fmt.Errorf("converting the object to %s: %w", gvk, err)
	}
	return true, gvr, nil
}

// namespace is the request's namespace object, or nil for cluster-scoped
// objects; looked up once per request (see WithRequestBudget).
func (e *Engine) namespace(ctx context.Context, req *Request) (*corev1.Namespace, error) {
	if req.GetNamespace() == "" {
		return nil, nil
	}
	memo := memoOf(ctx)
	if memo != nil && memo.namespaceRead {
		return memo.namespace, memo.namespaceErr
	}
	ns, err := e.matcher.GetNamespace(ctx, req.GetNamespace())
	if err != nil {
		err = fmt.Errorf("looking up namespace %s: %w", req.GetNamespace(), err)
		ns = nil
	}
	if memo != nil {
		memo.namespaceRead, memo.namespace, memo.namespaceErr = true, ns, err
	}
	return ns, err
}

// toUnstructured returns obj's content as a map.
func toUnstructured(obj runtime.Object) (map[string]any, error) {
	return runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
}

// Check compiles p without loading it and returns what is wrong with it.
func (e *Engine) Check(p policies.Policy) []compile.ExpressionError {
	return compile.Policy(p, e.envSet, e.checker).Problems
}

// Rules returns the union of the resource rules of the loaded mutating and
// validating policies, for the webhook configurations. The mutating rules
// also send the resources that are validated when mutating.
func (e *Engine) Rules() (mutating, validating []admissionregistrationv1.RuleWithOperations) {
	set := e.current.Load()
	mutating, validating = unionRules(set.mutating), unionRules(set.validating)
	for _, rule := range validating {
		if rule, ok := validatedWhenMutating(rule); ok && !slices.ContainsFunc(mutating, func(r admissionregistrationv1.RuleWithOperations) bool { return equality.Semantic.DeepEqual(r, rule) }) {
			mutating = append(mutating, rule)
		}
	}
	return mutating, validating
}

// KindOf is the kind of resource (with "/subresource" for a subresource)
// when a loaded policy names it exactly or it is a policy kind, else
// "other": what a request is counted under, never what it says of itself,
// so a client cannot make the server count under names it makes up.
func (e *Engine) KindOf(resource schema.GroupVersionResource, subResource string) string {
	kind, ok := e.current.Load().kinds[resource]
	switch {
	case !ok:
		return "other"
	case subResource != "":
		return kind + "/" + subResource
	}
	return kind
}

// kindsOf maps the resources the policies' rules name exactly (and the
// policy kinds) to their kinds.
func (e *Engine) kindsOf(list []*compile.Compiled) map[schema.GroupVersionResource]string {
	kinds := map[schema.GroupVersionResource]string{
		v1alpha1.GroupVersion.WithResource("mutatingpolicies"):   policies.KindMutating,
		v1alpha1.GroupVersion.WithResource("validatingpolicies"): policies.KindValidating,
	}
	for _, c := range list {
		for _, rule := range c.Criteria.Resources.ResourceRules {
			for _, group := range rule.APIGroups {
				for _, version := range rule.APIVersions {
					for _, resource := range rule.Resources {
						resource, _, _ = strings.Cut(resource, "/")
						gvr := schema.GroupVersionResource{Group: group, Version: version, Resource: resource}
						if _, seen := kinds[gvr]; seen || group == "*" || version == "*" || resource == "*" {
							continue
						}
						if gvk, err := e.mapper.KindFor(gvr); err == nil {
							kinds[gvr] = gvk.Kind
						}
					}
				}
			}
		}
	}
	return kinds
}

// GeneratingRules are the rules of the mutating policies that generate
// objects: the objects to watch for generation.
func (e *Engine) GeneratingRules() []admissionregistrationv1.RuleWithOperations {
	return unionRules(e.current.Load().generating)
}

// RuleKinds are the distinct kinds rules name exactly; wildcard rules and
// subresources are left out, as they would take in every kind of the cluster.
func RuleKinds(mapper meta.RESTMapper, rules []admissionregistrationv1.RuleWithOperations) []schema.GroupVersionKind {
	var out []schema.GroupVersionKind
	for _, rule := range rules {
		for _, group := range rule.APIGroups {
			for _, version := range rule.APIVersions {
				for _, resource := range rule.Resources {
					if group == "*" || version == "*" || resource == "*" || strings.Contains(resource, "/") {
						continue
					}
					gvk, err := mapper.KindFor(schema.GroupVersionResource{Group: group, Version: version, Resource: resource})
					if err == nil && !slices.Contains(out, gvk) {
						out = append(out, gvk)
					}
				}
			}
		}
	}
	return out
}

// validatedWhenMutating is the part of a validating rule the mutating
// webhook must send too: its CREATE and UPDATE of Services.
func validatedWhenMutating(rule admissionregistrationv1.RuleWithOperations) (admissionregistrationv1.RuleWithOperations, bool) {
	if !CoversServices(rule.Rule) {
		return rule, false
	}
	var operations []admissionregistrationv1.OperationType
	for _, op := range []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update} {
		if slices.Contains(rule.Operations, op) || slices.Contains(rule.Operations, admissionregistrationv1.OperationAll) {
			operations = append(operations, op)
		}
	}
	rule.Operations = operations
	return rule, len(operations) > 0
}

// coversServices tells whether rule can match core v1 services.
func CoversServices(rule admissionregistrationv1.Rule) bool {
	return (slices.Contains(rule.APIGroups, "") || slices.Contains(rule.APIGroups, "*")) &&
		(slices.Contains(rule.APIVersions, "v1") || slices.Contains(rule.APIVersions, "*")) &&
		(slices.Contains(rule.Resources, "services") || slices.Contains(rule.Resources, "*"))
}

// unionRules lists the distinct rules of policies, without resource names
// (the engine matches names itself).
func unionRules(list []*compile.Compiled) []admissionregistrationv1.RuleWithOperations {
	var out []admissionregistrationv1.RuleWithOperations
	for _, c := range list {
		out = addRules(out, c)
	}
	return out
}

// warmKinds are the kinds the engine reads while it evaluates: the settings
// (ConfigMaps) and what the CEL functions look up.
var warmKinds = []schema.GroupVersionKind{
	{Version: "v1", Kind: "ConfigMap"},
	{Version: "v1", Kind: "Service"},
	{Group: "apps", Version: "v1", Kind: "StatefulSet"},
}

// WarmUp fills the cache of each kind the engine reads while it evaluates,
// before the first request: reads during a request never wait for one.
func (e *Engine) WarmUp(ctx context.Context) error {
	for _, kind := range warmKinds {
		if err := e.objects.Sync(ctx, kind); err != nil {
			return fmt.Errorf("reading %s objects: %w", kind.Kind, err)
		}
	}
	return nil
}

// Admitted records an object the policies let through, so the requests after
// it see it: a Service's node ports go into the node port index. With hold 0
// they stay (offline, documents in apply order); otherwise they are a
// reservation for hold, until the cluster reports the Service (serve).
func (e *Engine) Admitted(obj *unstructured.Unstructured, hold time.Duration) {
	if e.nodePorts == nil || obj.GroupVersionKind() != corev1.SchemeGroupVersion.WithKind("Service") {
		return
	}
	svc := &corev1.Service{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, svc); err == nil {
		if svc.Namespace == "" {
			svc.Namespace = "default"
		}
		if svc.Name == "" {
			// Named by generateName, it has no name yet: each such Service
			// holds its ports under a name of its own.
			svc.Name = fmt.Sprintf("%s(new %d)", svc.GenerateName, e.unnamed.Add(1))
		}
		if hold == 0 {
			e.nodePorts.Set(svc)
		} else {
			e.nodePorts.Reserve(svc, hold)
		}
	}
}

// servicesResource is where the API server allocates before validating
// admission: node ports are taken in BeginCreate/BeginUpdate, after the
// mutating webhooks but before the validating ones.
var servicesResource = schema.GroupVersionResource{Version: "v1", Resource: "services"}

// ValidatedWhenMutating tells the requests whose validating policies the
// server runs in the mutating phase: CREATE and UPDATE of Services, so their
// messages come before the API server's own node port allocation errors.
// Every other operation on them (DELETE, CONNECT) is validated in the
// validating phase, as any other request.
func ValidatedWhenMutating(resource schema.GroupVersionResource, operation admissionregistrationv1.OperationType) bool {
	return resource == servicesResource && (operation == admissionregistrationv1.Create || operation == admissionregistrationv1.Update)
}
