package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/trellisv1connect"
)

// fakeTestbed is the fake server's Experiments, Libraries, Resources and
// Realizations. Requests are recorded with the social services' (so that
// lastRequest finds them); the little state there is lets a test see
// revisions checked and grants replaced.
//
// The experiment alice:ping exists with the aspects layout main (revision 3)
// and procedure run (revision 1), shared with lab:lab; the resource n1 is
// bound to the realization rz-1, which binds a to n1 and b to n2; rz-gone is
// released already. Names starting with "nosuch" exist nowhere.
type fakeTestbed struct {
	*fakeSocial

	tmu       sync.Mutex
	revisions map[string]int64 // "type/name" -> revision, of alice:ping
}

type (
	fakeExperiments struct {
		trellisv1connect.UnimplementedExperimentsHandler
		*fakeTestbed
	}
	fakeLibraries struct {
		trellisv1connect.UnimplementedLibrariesHandler
		*fakeTestbed
	}
	fakeResources struct {
		trellisv1connect.UnimplementedResourcesHandler
		*fakeTestbed
	}
	fakeRealizations struct {
		trellisv1connect.UnimplementedRealizationsHandler
		*fakeTestbed
	}
)

func mountTestbed(social *fakeSocial, mux *http.ServeMux) *fakeTestbed {
	tb := &fakeTestbed{fakeSocial: social, revisions: map[string]int64{"layout/main": 3, "procedure/run": 1}}
	mux.Handle(trellisv1connect.NewExperimentsHandler(fakeExperiments{fakeTestbed: tb}))
	mux.Handle(trellisv1connect.NewLibrariesHandler(fakeLibraries{fakeTestbed: tb}))
	mux.Handle(trellisv1connect.NewResourcesHandler(fakeResources{fakeTestbed: tb}))
	mux.Handle(trellisv1connect.NewRealizationsHandler(fakeRealizations{fakeTestbed: tb}))
	return tb
}

// invalid is the server's invalid-argument error with one field violation.
func invalid(field, rule, desc string) error {
	cerr := connect.NewError(connect.CodeInvalidArgument, errors.New(field+": "+desc))
	d, err := connect.NewErrorDetail(&trellisv1.FieldViolations{Violations: []*trellisv1.FieldViolation{
		{Field: field, Rule: rule, Description: desc},
	}})
	if err != nil {
		return err
	}
	cerr.AddDetail(d)
	return cerr
}

// checkOwnedID refuses what is not OWNER:NAME and finds nothing under
// "nosuch".
func checkOwnedID(kind, id string) error {
	owner, _, ok := strings.Cut(id, ":")
	if !ok || owner == "" {
		return invalid("id", "id.format", kind+" ids are OWNER:NAME")
	}
	if strings.HasPrefix(owner, "nosuch") {
		return notFound(kind + " " + id)
	}
	return nil
}

func ownerOf(id string) string {
	owner, _, _ := strings.Cut(id, ":")
	return owner
}

// Experiments.

func (tb *fakeTestbed) experiment(id string) *trellisv1.Experiment {
	tb.tmu.Lock()
	defer tb.tmu.Unlock()
	return &trellisv1.Experiment{
		Id:          id,
		Owner:       ownerOf(id),
		Creator:     ownerOf(id),
		Description: "latency study",
		Aspects: []*trellisv1.Aspect{
			{Type: "layout", Name: "main", Revision: tb.revisions["layout/main"], Size: 96, Summary: "2 nodes, 1 link", UpdatedAt: fakeTime},
			{Type: "procedure", Name: "run", Revision: tb.revisions["procedure/run"], Size: 11, UpdatedAt: fakeTime},
		},
		Grants:    []*trellisv1.Grant{{Circle: "lab:lab", Rights: []string{"read", "realize"}}},
		CreatedAt: fakeTime,
	}
}

func aspectsOf(in []*trellisv1.AspectInput) []*trellisv1.Aspect {
	var out []*trellisv1.Aspect
	for _, a := range in {
		as := &trellisv1.Aspect{Type: a.GetType(), Name: a.GetName(), Revision: 1, Size: int64(len(a.GetContent())), UpdatedAt: fakeTime}
		if a.GetType() == "layout" {
			as.Summary = fmt.Sprintf("%d nodes", strings.Count(string(a.GetContent()), "name:"))
		}
		out = append(out, as)
	}
	return out
}

func (f fakeExperiments) CreateExperiment(_ context.Context, req *connect.Request[trellisv1.CreateExperimentRequest]) (*connect.Response[trellisv1.CreateExperimentResponse], error) {
	uid, err := f.accept(req)
	if err != nil {
		return nil, err
	}
	if err := checkOwnedID("experiment", req.Msg.GetId()); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.CreateExperimentResponse{Experiment: &trellisv1.Experiment{
		Id: req.Msg.GetId(), Owner: ownerOf(req.Msg.GetId()), Creator: uid, Description: req.Msg.GetDescription(),
		Aspects: aspectsOf(req.Msg.GetAspects()), CreatedAt: fakeTime,
	}}), nil
}

func (f fakeExperiments) GetExperiment(_ context.Context, req *connect.Request[trellisv1.GetExperimentRequest]) (*connect.Response[trellisv1.GetExperimentResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	if err := checkOwnedID("experiment", req.Msg.GetId()); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.GetExperimentResponse{Experiment: f.experiment(req.Msg.GetId())}), nil
}

// ListExperiments serves alice:x0..alice:x2 two per page.
func (f fakeExperiments) ListExperiments(_ context.Context, req *connect.Request[trellisv1.ListExperimentsRequest]) (*connect.Response[trellisv1.ListExperimentsResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	resp := &trellisv1.ListExperimentsResponse{}
	start := pageStart(req.Msg.GetPageToken())
	for i := start; i < 3 && i < start+2; i++ {
		resp.Experiments = append(resp.Experiments, f.experiment(fmt.Sprintf("alice:x%d", i)))
	}
	if start+2 < 3 {
		resp.NextPageToken = fmt.Sprintf("p%d", start+2)
	}
	return connect.NewResponse(resp), nil
}

func pageStart(token string) int {
	start := 0
	if token != "" {
		fmt.Sscanf(token, "p%d", &start)
	}
	return start
}

func (f fakeExperiments) AddAspects(_ context.Context, req *connect.Request[trellisv1.AddAspectsRequest]) (*connect.Response[trellisv1.AddAspectsResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	x := f.experiment(req.Msg.GetId())
	for _, a := range aspectsOf(req.Msg.GetAspects()) {
		if findAspect(x, a.GetType(), a.GetName()) != nil {
			return nil, connect.NewError(connect.CodeAlreadyExists, fmt.Errorf("aspect %s %s already exists", a.GetType(), a.GetName()))
		}
		x.Aspects = append(x.Aspects, a)
	}
	return connect.NewResponse(&trellisv1.AddAspectsResponse{Experiment: x}), nil
}

// ChangeAspects refuses a change based on a revision other than the
// current one, as the real store does, and counts one up otherwise.
func (f fakeExperiments) ChangeAspects(_ context.Context, req *connect.Request[trellisv1.ChangeAspectsRequest]) (*connect.Response[trellisv1.ChangeAspectsResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	f.tmu.Lock()
	for _, ch := range req.Msg.GetChanges() {
		key := ch.GetType() + "/" + ch.GetName()
		cur, ok := f.revisions[key]
		if !ok {
			f.tmu.Unlock()
			return nil, notFound("aspect " + ch.GetType() + " " + ch.GetName())
		}
		if ch.GetRevision() != cur {
			f.tmu.Unlock()
			return nil, connect.NewError(connect.CodeAborted, fmt.Errorf(
				"aspect %s %s changed since revision %d (it is at %d): read it again", ch.GetType(), ch.GetName(), ch.GetRevision(), cur))
		}
		f.revisions[key] = cur + 1
	}
	f.tmu.Unlock()
	return connect.NewResponse(&trellisv1.ChangeAspectsResponse{Experiment: f.experiment(req.Msg.GetId())}), nil
}

func (f fakeExperiments) RemoveAspects(_ context.Context, req *connect.Request[trellisv1.RemoveAspectsRequest]) (*connect.Response[trellisv1.RemoveAspectsResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	x := f.experiment(req.Msg.GetId())
	for _, ref := range req.Msg.GetAspects() {
		x.Aspects = slices.DeleteFunc(x.Aspects, func(a *trellisv1.Aspect) bool {
			return a.GetType() == ref.GetType() && a.GetName() == ref.GetName()
		})
	}
	return connect.NewResponse(&trellisv1.RemoveAspectsResponse{Experiment: x}), nil
}

// grantsAfter is the fake's grants (lab:lab read) after circle is set to
// rights; no rights revoke.
func grantsAfter(circle string, rights []string) []*trellisv1.Grant {
	gs := []*trellisv1.Grant{{Circle: "lab:lab", Rights: []string{"read"}}}
	gs = slices.DeleteFunc(gs, func(g *trellisv1.Grant) bool { return g.GetCircle() == circle })
	if len(rights) > 0 {
		gs = append(gs, &trellisv1.Grant{Circle: circle, Rights: rights})
	}
	return gs
}

func (f fakeExperiments) ChangeAccess(_ context.Context, req *connect.Request[trellisv1.ExperimentsChangeAccessRequest]) (*connect.Response[trellisv1.ExperimentsChangeAccessResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.ExperimentsChangeAccessResponse{Grants: grantsAfter(req.Msg.GetCircle(), req.Msg.GetRights())}), nil
}

func (f fakeExperiments) GetProfileDescription(_ context.Context, req *connect.Request[trellisv1.ExperimentsGetProfileDescriptionRequest]) (*connect.Response[trellisv1.ExperimentsGetProfileDescriptionResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.ExperimentsGetProfileDescriptionResponse{Attributes: fakeDescription()}), nil
}

func (f fakeExperiments) GetExperimentProfile(_ context.Context, req *connect.Request[trellisv1.GetExperimentProfileRequest]) (*connect.Response[trellisv1.GetExperimentProfileResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.GetExperimentProfileResponse{Id: req.Msg.GetId(), Attributes: fakeProfile()}), nil
}

func (f fakeExperiments) SetExperimentProfile(_ context.Context, req *connect.Request[trellisv1.SetExperimentProfileRequest]) (*connect.Response[trellisv1.SetExperimentProfileResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.SetExperimentProfileResponse{Changes: fakeChanges(req.Msg.GetSet(), req.Msg.GetClear())}), nil
}

func (f fakeExperiments) RemoveExperiment(_ context.Context, req *connect.Request[trellisv1.RemoveExperimentRequest]) (*connect.Response[trellisv1.RemoveExperimentResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	if err := checkOwnedID("experiment", req.Msg.GetId()); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.RemoveExperimentResponse{}), nil
}

// fakeDoc is the export format the real server writes.
type fakeDoc struct {
	Format      string `json:"format"`
	ID          string `json:"id"`
	Description string `json:"description,omitempty"`
	Aspects     []struct {
		Type    string `json:"type"`
		Name    string `json:"name"`
		Content []byte `json:"content"`
	} `json:"aspects"`
}

func (f fakeExperiments) ExportExperiment(_ context.Context, req *connect.Request[trellisv1.ExportExperimentRequest]) (*connect.Response[trellisv1.ExportExperimentResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	if err := checkOwnedID("experiment", req.Msg.GetId()); err != nil {
		return nil, err
	}
	doc := fakeDoc{Format: "trellis.experiment/v1", ID: req.Msg.GetId(), Description: "latency study"}
	doc.Aspects = append(doc.Aspects, struct {
		Type    string `json:"type"`
		Name    string `json:"name"`
		Content []byte `json:"content"`
	}{"layout", "main", []byte("nodes:\n  - name: a\n  - name: b\n")})
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.ExportExperimentResponse{Document: b}), nil
}

// ImportExperiment takes the id from the request only, as the real service
// does: the client reads the document's.
func (f fakeExperiments) ImportExperiment(_ context.Context, req *connect.Request[trellisv1.ImportExperimentRequest]) (*connect.Response[trellisv1.ImportExperimentResponse], error) {
	uid, err := f.accept(req)
	if err != nil {
		return nil, err
	}
	var doc fakeDoc
	if err := json.Unmarshal(req.Msg.GetDocument(), &doc); err != nil || doc.Format != "trellis.experiment/v1" {
		return nil, invalid("document", "document.format", "not an exported experiment")
	}
	if err := checkOwnedID("experiment", req.Msg.GetId()); err != nil {
		return nil, err
	}
	var in []*trellisv1.AspectInput
	for _, a := range doc.Aspects {
		in = append(in, &trellisv1.AspectInput{Type: a.Type, Name: a.Name, Content: a.Content})
	}
	return connect.NewResponse(&trellisv1.ImportExperimentResponse{Experiment: &trellisv1.Experiment{
		Id: req.Msg.GetId(), Owner: ownerOf(req.Msg.GetId()), Creator: uid, Description: doc.Description,
		Aspects: aspectsOf(in), CreatedAt: fakeTime,
	}}), nil
}

// Libraries.

func fakeLibrary(id string, experiments ...string) *trellisv1.Library {
	return &trellisv1.Library{
		Id: id, Owner: ownerOf(id), Creator: ownerOf(id), Description: "classics",
		Experiments: experiments,
		Grants:      []*trellisv1.Grant{{Circle: "lab:lab", Rights: []string{"read"}}},
		CreatedAt:   fakeTime,
	}
}

func (f fakeLibraries) CreateLibrary(_ context.Context, req *connect.Request[trellisv1.CreateLibraryRequest]) (*connect.Response[trellisv1.CreateLibraryResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	if err := checkOwnedID("library", req.Msg.GetId()); err != nil {
		return nil, err
	}
	l := fakeLibrary(req.Msg.GetId())
	l.Description, l.Grants = req.Msg.GetDescription(), nil
	return connect.NewResponse(&trellisv1.CreateLibraryResponse{Library: l}), nil
}

func (f fakeLibraries) GetLibrary(_ context.Context, req *connect.Request[trellisv1.GetLibraryRequest]) (*connect.Response[trellisv1.GetLibraryResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	if err := checkOwnedID("library", req.Msg.GetId()); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.GetLibraryResponse{Library: fakeLibrary(req.Msg.GetId(), "alice:ping", "bob:trace")}), nil
}

func (f fakeLibraries) ListLibraries(_ context.Context, req *connect.Request[trellisv1.ListLibrariesRequest]) (*connect.Response[trellisv1.ListLibrariesResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.ListLibrariesResponse{Libraries: []*trellisv1.Library{
		fakeLibrary("alice:classics", "alice:ping"), fakeLibrary("lab:shared"),
	}}), nil
}

// AddExperiments: an experiment under "nosuch" is one the caller may not
// read, so it is not found.
func (f fakeLibraries) AddExperiments(_ context.Context, req *connect.Request[trellisv1.AddExperimentsRequest]) (*connect.Response[trellisv1.AddExperimentsResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	for _, x := range req.Msg.GetExperiments() {
		if err := checkOwnedID("experiment", x); err != nil {
			return nil, err
		}
	}
	return connect.NewResponse(&trellisv1.AddExperimentsResponse{Library: fakeLibrary(req.Msg.GetId(), append([]string{"alice:ping"}, req.Msg.GetExperiments()...)...)}), nil
}

func (f fakeLibraries) RemoveExperiments(_ context.Context, req *connect.Request[trellisv1.RemoveExperimentsRequest]) (*connect.Response[trellisv1.RemoveExperimentsResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.RemoveExperimentsResponse{Library: fakeLibrary(req.Msg.GetId())}), nil
}

func (f fakeLibraries) ChangeAccess(_ context.Context, req *connect.Request[trellisv1.LibrariesChangeAccessRequest]) (*connect.Response[trellisv1.LibrariesChangeAccessResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.LibrariesChangeAccessResponse{Grants: grantsAfter(req.Msg.GetCircle(), req.Msg.GetRights())}), nil
}

func (f fakeLibraries) GetProfileDescription(_ context.Context, req *connect.Request[trellisv1.LibrariesGetProfileDescriptionRequest]) (*connect.Response[trellisv1.LibrariesGetProfileDescriptionResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.LibrariesGetProfileDescriptionResponse{Attributes: fakeDescription()}), nil
}

func (f fakeLibraries) GetLibraryProfile(_ context.Context, req *connect.Request[trellisv1.GetLibraryProfileRequest]) (*connect.Response[trellisv1.GetLibraryProfileResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.GetLibraryProfileResponse{Id: req.Msg.GetId(), Attributes: fakeProfile()}), nil
}

func (f fakeLibraries) SetLibraryProfile(_ context.Context, req *connect.Request[trellisv1.SetLibraryProfileRequest]) (*connect.Response[trellisv1.SetLibraryProfileResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.SetLibraryProfileResponse{Changes: fakeChanges(req.Msg.GetSet(), req.Msg.GetClear())}), nil
}

func (f fakeLibraries) RemoveLibrary(_ context.Context, req *connect.Request[trellisv1.RemoveLibraryRequest]) (*connect.Response[trellisv1.RemoveLibraryResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	if err := checkOwnedID("library", req.Msg.GetId()); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.RemoveLibraryResponse{}), nil
}

// Resources.

func fakeResource(name string) *trellisv1.Resource {
	r := &trellisv1.Resource{
		Name: name, Kind: "node", Provider: "site1", State: "available",
		Attributes: map[string]string{"cores": "8", "arch": "x86_64"},
		CreatedAt:  fakeTime,
	}
	if name == "n1" {
		r.Realization = "rz-1"
	}
	return r
}

var resourceKinds = []string{"node", "image", "network", "external"}

func (f fakeResources) RegisterResource(_ context.Context, req *connect.Request[trellisv1.RegisterResourceRequest]) (*connect.Response[trellisv1.RegisterResourceResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	if !slices.Contains(resourceKinds, req.Msg.GetKind()) {
		return nil, invalid("kind", "kind.unknown", "one of node, image, network, external")
	}
	if req.Msg.GetName() == "n1" {
		return nil, connect.NewError(connect.CodeAlreadyExists, errors.New("resource n1 already exists"))
	}
	return connect.NewResponse(&trellisv1.RegisterResourceResponse{Resource: &trellisv1.Resource{
		Name: req.Msg.GetName(), Kind: req.Msg.GetKind(), Provider: req.Msg.GetProvider(),
		Attributes: req.Msg.GetAttributes(), State: "available", CreatedAt: fakeTime,
	}}), nil
}

func (f fakeResources) GetResource(_ context.Context, req *connect.Request[trellisv1.GetResourceRequest]) (*connect.Response[trellisv1.GetResourceResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	if strings.HasPrefix(req.Msg.GetName(), "nosuch") {
		return nil, notFound("resource " + req.Msg.GetName())
	}
	return connect.NewResponse(&trellisv1.GetResourceResponse{Resource: fakeResource(req.Msg.GetName())}), nil
}

// ListResources serves n1..n3 two per page; a filter without a comparison
// is refused as the server's parser refuses it.
func (f fakeResources) ListResources(_ context.Context, req *connect.Request[trellisv1.ListResourcesRequest]) (*connect.Response[trellisv1.ListResourcesResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	for i, flt := range req.Msg.GetFilters() {
		if !strings.ContainsAny(flt, "=<>") {
			return nil, invalid(fmt.Sprintf("filters[%d]", i), "constraint.format", fmt.Sprintf("%q is not a constraint", flt))
		}
	}
	resp := &trellisv1.ListResourcesResponse{}
	start := pageStart(req.Msg.GetPageToken())
	for i := start; i < 3 && i < start+2; i++ {
		resp.Resources = append(resp.Resources, fakeResource(fmt.Sprintf("n%d", i+1)))
	}
	if start+2 < 3 {
		resp.NextPageToken = fmt.Sprintf("p%d", start+2)
	}
	return connect.NewResponse(resp), nil
}

func (f fakeResources) SetResourceState(_ context.Context, req *connect.Request[trellisv1.SetResourceStateRequest]) (*connect.Response[trellisv1.SetResourceStateResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	if !slices.Contains([]string{"available", "maintenance", "down"}, req.Msg.GetState()) {
		return nil, invalid("state", "state.unknown", "one of available, maintenance, down")
	}
	r := fakeResource(req.Msg.GetName())
	r.State = req.Msg.GetState()
	return connect.NewResponse(&trellisv1.SetResourceStateResponse{Resource: r}), nil
}

func (f fakeResources) RemoveResource(_ context.Context, req *connect.Request[trellisv1.RemoveResourceRequest]) (*connect.Response[trellisv1.RemoveResourceResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	if req.Msg.GetName() == "n1" {
		return nil, connect.NewError(connect.CodeFailedPrecondition, errors.New("resource n1 is bound to realization rz-1"))
	}
	return connect.NewResponse(&trellisv1.RemoveResourceResponse{}), nil
}

// Realizations.

func fakeRealization(id string, lease time.Duration) *trellisv1.Realization {
	return &trellisv1.Realization{
		Id: id, Experiment: "alice:ping", Project: "lab", Owner: "alice", State: "allocated",
		Bindings:       []*trellisv1.Binding{{Element: "a", Resource: "n1"}, {Element: "b", Resource: "n2"}},
		LeaseExpiresAt: timestamppb.New(fakeTime.AsTime().Add(lease)),
		CreatedAt:      fakeTime,
		Grants:         []*trellisv1.Grant{{Circle: "lab:lab", Rights: []string{"read"}}},
	}
}

// Realize: without a lease the server's default, one hour, applies; the
// experiment alice:empty has no layout.
func (f fakeRealizations) Realize(_ context.Context, req *connect.Request[trellisv1.RealizeRequest]) (*connect.Response[trellisv1.RealizeResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	if req.Msg.GetExperiment() == "alice:empty" {
		return nil, connect.NewError(connect.CodeFailedPrecondition, errors.New("experiment alice:empty has no layout to realize"))
	}
	lease := time.Hour
	if req.Msg.GetLease() != nil {
		lease = req.Msg.GetLease().AsDuration()
	}
	rz := fakeRealization("rz-1", lease)
	rz.Experiment, rz.Project = req.Msg.GetExperiment(), req.Msg.GetProject()
	return connect.NewResponse(&trellisv1.RealizeResponse{Realization: rz}), nil
}

// checkRealization finds rz-1 and rz-gone (released), nothing else.
func checkRealization(id string) error {
	if id != "rz-1" && id != "rz-gone" {
		return notFound("realization " + id)
	}
	return nil
}

func (f fakeRealizations) GetRealization(_ context.Context, req *connect.Request[trellisv1.GetRealizationRequest]) (*connect.Response[trellisv1.GetRealizationResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	if err := checkRealization(req.Msg.GetId()); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.GetRealizationResponse{Realization: fakeRealization(req.Msg.GetId(), time.Hour)}), nil
}

func (f fakeRealizations) ListRealizations(_ context.Context, req *connect.Request[trellisv1.ListRealizationsRequest]) (*connect.Response[trellisv1.ListRealizationsResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	resp := &trellisv1.ListRealizationsResponse{Realizations: []*trellisv1.Realization{fakeRealization("rz-1", time.Hour)}}
	if req.Msg.GetIncludeEnded() {
		gone := fakeRealization("rz-gone", time.Hour)
		gone.State, gone.ReleasedAt = "released", fakeTime
		resp.Realizations = append(resp.Realizations, gone)
	}
	return connect.NewResponse(resp), nil
}

func (f fakeRealizations) Renew(_ context.Context, req *connect.Request[trellisv1.RenewRequest]) (*connect.Response[trellisv1.RenewResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	if err := checkRealization(req.Msg.GetId()); err != nil {
		return nil, err
	}
	lease := time.Hour
	if req.Msg.GetLease() != nil {
		lease = req.Msg.GetLease().AsDuration()
	}
	return connect.NewResponse(&trellisv1.RenewResponse{Realization: fakeRealization(req.Msg.GetId(), lease)}), nil
}

// ChangeBindings refuses the bound n1 for another element, as the store
// does.
func (f fakeRealizations) ChangeBindings(_ context.Context, req *connect.Request[trellisv1.ChangeBindingsRequest]) (*connect.Response[trellisv1.ChangeBindingsResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	if err := checkRealization(req.Msg.GetId()); err != nil {
		return nil, err
	}
	rz := fakeRealization(req.Msg.GetId(), time.Hour)
	for _, b := range req.Msg.GetBindings() {
		if b.GetResource() == "n1" && b.GetElement() != "a" {
			return nil, connect.NewError(connect.CodeFailedPrecondition, errors.New("resource n1 is bound to another element"))
		}
		i := slices.IndexFunc(rz.Bindings, func(x *trellisv1.Binding) bool { return x.GetElement() == b.GetElement() })
		if i < 0 {
			return nil, invalid("bindings[0].element", "binding.element", "no element "+b.GetElement()+" in the layout")
		}
		rz.Bindings[i].Resource = b.GetResource()
	}
	return connect.NewResponse(&trellisv1.ChangeBindingsResponse{Realization: rz}), nil
}

func (f fakeRealizations) ChangeAccess(_ context.Context, req *connect.Request[trellisv1.RealizationsChangeAccessRequest]) (*connect.Response[trellisv1.RealizationsChangeAccessResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.RealizationsChangeAccessResponse{Grants: grantsAfter(req.Msg.GetCircle(), req.Msg.GetRights())}), nil
}

func released(id string) (*trellisv1.Realization, error) {
	if err := checkRealization(id); err != nil {
		return nil, err
	}
	if id == "rz-gone" {
		return nil, connect.NewError(connect.CodeFailedPrecondition, errors.New("realization rz-gone is released already"))
	}
	rz := fakeRealization(id, time.Hour)
	rz.State, rz.ReleasedAt = "released", fakeTime
	return rz, nil
}

func (f fakeRealizations) Release(_ context.Context, req *connect.Request[trellisv1.ReleaseRequest]) (*connect.Response[trellisv1.ReleaseResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	rz, err := released(req.Msg.GetId())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.ReleaseResponse{Realization: rz}), nil
}

// ListAllRealizations serves rz-0..rz-2 two per page, for admins only (the
// fake's admin is "ops").
func (f fakeRealizations) ListAllRealizations(_ context.Context, req *connect.Request[trellisv1.ListAllRealizationsRequest]) (*connect.Response[trellisv1.ListAllRealizationsResponse], error) {
	uid, err := f.accept(req)
	if err != nil {
		return nil, err
	}
	if uid != "ops" {
		return nil, connect.NewError(connect.CodePermissionDenied, errors.New("only admins list every realization"))
	}
	resp := &trellisv1.ListAllRealizationsResponse{}
	start := pageStart(req.Msg.GetPageToken())
	for i := start; i < 3 && i < start+2; i++ {
		resp.Realizations = append(resp.Realizations, fakeRealization(fmt.Sprintf("rz-%d", i), time.Hour))
	}
	if start+2 < 3 {
		resp.NextPageToken = fmt.Sprintf("p%d", start+2)
	}
	return connect.NewResponse(resp), nil
}

func (f fakeRealizations) ForceRelease(_ context.Context, req *connect.Request[trellisv1.ForceReleaseRequest]) (*connect.Response[trellisv1.ForceReleaseResponse], error) {
	uid, err := f.accept(req)
	if err != nil {
		return nil, err
	}
	if uid != "ops" {
		return nil, connect.NewError(connect.CodePermissionDenied, errors.New("only admins release others' realizations"))
	}
	rz, err := released(req.Msg.GetId())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.ForceReleaseResponse{Realization: rz}), nil
}
