package api

import (
	"context"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/service"
	"github.com/trellis-testbed/trellis/internal/store"
)

func grantsToProto(gs []*domain.Grant) []*trellisv1.Grant {
	out := make([]*trellisv1.Grant, 0, len(gs))
	for _, g := range gs {
		out = append(out, &trellisv1.Grant{Circle: g.Circle, Rights: g.Rights.Names()})
	}
	return out
}

func experimentToProto(v *service.ExperimentView) *trellisv1.Experiment {
	out := &trellisv1.Experiment{
		Id: v.ID, Owner: v.Owner, Creator: v.Creator, Description: v.Description,
		Grants: grantsToProto(v.Grants), CreatedAt: ts(v.CreatedAt),
	}
	for _, a := range v.Aspects {
		out.Aspects = append(out.Aspects, &trellisv1.Aspect{
			Type: a.Type, Name: a.Name, Revision: a.Revision, Content: a.Content,
			Size: a.Size, Summary: a.Summary, UpdatedAt: ts(a.UpdatedAt),
		})
	}
	return out
}

func aspectInputs(in []*trellisv1.AspectInput) []service.AspectInput {
	out := make([]service.AspectInput, 0, len(in))
	for _, a := range in {
		out = append(out, service.AspectInput{Type: a.Type, Name: a.Name, Content: a.Content})
	}
	return out
}

type experimentsHandler struct{ svc *service.Service }

func (h *experimentsHandler) CreateExperiment(ctx context.Context, req *connect.Request[trellisv1.CreateExperimentRequest]) (*connect.Response[trellisv1.CreateExperimentResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	v, err := h.svc.Testbed.CreateExperiment(ctx, p, req.Msg.Id, req.Msg.Description, aspectInputs(req.Msg.Aspects))
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.CreateExperimentResponse{Experiment: experimentToProto(v)}), nil
}

func (h *experimentsHandler) GetExperiment(ctx context.Context, req *connect.Request[trellisv1.GetExperimentRequest]) (*connect.Response[trellisv1.GetExperimentResponse], error) {
	v, err := h.svc.Testbed.GetExperiment(ctx, req.Msg.Id, req.Msg.IncludeContent)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.GetExperimentResponse{Experiment: experimentToProto(v)}), nil
}

func (h *experimentsHandler) ListExperiments(ctx context.Context, req *connect.Request[trellisv1.ListExperimentsRequest]) (*connect.Response[trellisv1.ListExperimentsResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	vs, next, err := h.svc.Testbed.ListExperiments(ctx, p, service.ExperimentQuery{Owner: req.Msg.Owner, Text: req.Msg.Text, PageSize: req.Msg.PageSize, PageToken: req.Msg.PageToken})
	if err != nil {
		return nil, err
	}
	resp := &trellisv1.ListExperimentsResponse{NextPageToken: next}
	for _, v := range vs {
		resp.Experiments = append(resp.Experiments, experimentToProto(v))
	}
	return connect.NewResponse(resp), nil
}

func (h *experimentsHandler) AddAspects(ctx context.Context, req *connect.Request[trellisv1.AddAspectsRequest]) (*connect.Response[trellisv1.AddAspectsResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	v, err := h.svc.Testbed.AddAspects(ctx, p, req.Msg.Id, aspectInputs(req.Msg.Aspects))
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.AddAspectsResponse{Experiment: experimentToProto(v)}), nil
}

func (h *experimentsHandler) ChangeAspects(ctx context.Context, req *connect.Request[trellisv1.ChangeAspectsRequest]) (*connect.Response[trellisv1.ChangeAspectsResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	in := make([]service.AspectInput, 0, len(req.Msg.Changes))
	for _, c := range req.Msg.Changes {
		in = append(in, service.AspectInput{Type: c.Type, Name: c.Name, Revision: c.Revision, Content: c.Content})
	}
	v, err := h.svc.Testbed.ChangeAspects(ctx, p, req.Msg.Id, in)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.ChangeAspectsResponse{Experiment: experimentToProto(v)}), nil
}

func (h *experimentsHandler) RemoveAspects(ctx context.Context, req *connect.Request[trellisv1.RemoveAspectsRequest]) (*connect.Response[trellisv1.RemoveAspectsResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	in := make([]service.AspectInput, 0, len(req.Msg.Aspects))
	for _, a := range req.Msg.Aspects {
		in = append(in, service.AspectInput{Type: a.Type, Name: a.Name})
	}
	v, err := h.svc.Testbed.RemoveAspects(ctx, p, req.Msg.Id, in)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.RemoveAspectsResponse{Experiment: experimentToProto(v)}), nil
}

func (h *experimentsHandler) ChangeAccess(ctx context.Context, req *connect.Request[trellisv1.ExperimentsChangeAccessRequest]) (*connect.Response[trellisv1.ExperimentsChangeAccessResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	gs, err := h.svc.Testbed.ChangeExperimentAccess(ctx, p, req.Msg.Id, req.Msg.Circle, req.Msg.Rights)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.ExperimentsChangeAccessResponse{Grants: grantsToProto(gs)}), nil
}

func (h *experimentsHandler) GetProfileDescription(context.Context, *connect.Request[trellisv1.ExperimentsGetProfileDescriptionRequest]) (*connect.Response[trellisv1.ExperimentsGetProfileDescriptionResponse], error) {
	return connect.NewResponse(&trellisv1.ExperimentsGetProfileDescriptionResponse{Attributes: descriptionToProto(domain.ExperimentProfile)}), nil
}

func (h *experimentsHandler) GetExperimentProfile(ctx context.Context, req *connect.Request[trellisv1.GetExperimentProfileRequest]) (*connect.Response[trellisv1.GetExperimentProfileResponse], error) {
	vals, err := h.svc.Testbed.GetExperimentProfile(ctx, req.Msg.Id)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.GetExperimentProfileResponse{Id: req.Msg.Id, Attributes: profileToProto(vals)}), nil
}

func (h *experimentsHandler) SetExperimentProfile(ctx context.Context, req *connect.Request[trellisv1.SetExperimentProfileRequest]) (*connect.Response[trellisv1.SetExperimentProfileResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	ch, err := h.svc.Testbed.SetExperimentProfile(ctx, p, req.Msg.Id, req.Msg.Set, req.Msg.Clear)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.SetExperimentProfileResponse{Changes: changesToProto(ch)}), nil
}

func (h *experimentsHandler) RemoveExperiment(ctx context.Context, req *connect.Request[trellisv1.RemoveExperimentRequest]) (*connect.Response[trellisv1.RemoveExperimentResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if err := h.svc.Testbed.RemoveExperiment(ctx, p, req.Msg.Id); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.RemoveExperimentResponse{}), nil
}

func (h *experimentsHandler) ExportExperiment(ctx context.Context, req *connect.Request[trellisv1.ExportExperimentRequest]) (*connect.Response[trellisv1.ExportExperimentResponse], error) {
	doc, err := h.svc.Testbed.ExportExperiment(ctx, req.Msg.Id)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.ExportExperimentResponse{Document: doc}), nil
}

func (h *experimentsHandler) ImportExperiment(ctx context.Context, req *connect.Request[trellisv1.ImportExperimentRequest]) (*connect.Response[trellisv1.ImportExperimentResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	v, err := h.svc.Testbed.ImportExperiment(ctx, p, req.Msg.Document, req.Msg.Id)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.ImportExperimentResponse{Experiment: experimentToProto(v)}), nil
}

type librariesHandler struct{ svc *service.Service }

func libraryToProto(v *service.LibraryView) *trellisv1.Library {
	return &trellisv1.Library{
		Id: v.ID, Owner: v.Owner, Creator: v.Creator, Description: v.Description,
		Experiments: v.Experiments, Grants: grantsToProto(v.Grants), CreatedAt: ts(v.CreatedAt),
	}
}

func (h *librariesHandler) CreateLibrary(ctx context.Context, req *connect.Request[trellisv1.CreateLibraryRequest]) (*connect.Response[trellisv1.CreateLibraryResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	v, err := h.svc.Testbed.CreateLibrary(ctx, p, req.Msg.Id, req.Msg.Description)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.CreateLibraryResponse{Library: libraryToProto(v)}), nil
}

func (h *librariesHandler) GetLibrary(ctx context.Context, req *connect.Request[trellisv1.GetLibraryRequest]) (*connect.Response[trellisv1.GetLibraryResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	v, err := h.svc.Testbed.GetLibrary(ctx, p, req.Msg.Id)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.GetLibraryResponse{Library: libraryToProto(v)}), nil
}

func (h *librariesHandler) ListLibraries(ctx context.Context, req *connect.Request[trellisv1.ListLibrariesRequest]) (*connect.Response[trellisv1.ListLibrariesResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	vs, next, err := h.svc.Testbed.ListLibraries(ctx, p, req.Msg.Owner, req.Msg.PageSize, req.Msg.PageToken)
	if err != nil {
		return nil, err
	}
	resp := &trellisv1.ListLibrariesResponse{NextPageToken: next}
	for _, v := range vs {
		resp.Libraries = append(resp.Libraries, libraryToProto(v))
	}
	return connect.NewResponse(resp), nil
}

func (h *librariesHandler) AddExperiments(ctx context.Context, req *connect.Request[trellisv1.AddExperimentsRequest]) (*connect.Response[trellisv1.AddExperimentsResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	v, err := h.svc.Testbed.AddLibraryExperiments(ctx, p, req.Msg.Id, req.Msg.Experiments)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.AddExperimentsResponse{Library: libraryToProto(v)}), nil
}

func (h *librariesHandler) RemoveExperiments(ctx context.Context, req *connect.Request[trellisv1.RemoveExperimentsRequest]) (*connect.Response[trellisv1.RemoveExperimentsResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	v, err := h.svc.Testbed.RemoveLibraryExperiments(ctx, p, req.Msg.Id, req.Msg.Experiments)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.RemoveExperimentsResponse{Library: libraryToProto(v)}), nil
}

func (h *librariesHandler) ChangeAccess(ctx context.Context, req *connect.Request[trellisv1.LibrariesChangeAccessRequest]) (*connect.Response[trellisv1.LibrariesChangeAccessResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	gs, err := h.svc.Testbed.ChangeLibraryAccess(ctx, p, req.Msg.Id, req.Msg.Circle, req.Msg.Rights)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.LibrariesChangeAccessResponse{Grants: grantsToProto(gs)}), nil
}

func (h *librariesHandler) GetProfileDescription(context.Context, *connect.Request[trellisv1.LibrariesGetProfileDescriptionRequest]) (*connect.Response[trellisv1.LibrariesGetProfileDescriptionResponse], error) {
	return connect.NewResponse(&trellisv1.LibrariesGetProfileDescriptionResponse{Attributes: descriptionToProto(domain.LibraryProfile)}), nil
}

func (h *librariesHandler) GetLibraryProfile(ctx context.Context, req *connect.Request[trellisv1.GetLibraryProfileRequest]) (*connect.Response[trellisv1.GetLibraryProfileResponse], error) {
	vals, err := h.svc.Testbed.GetLibraryProfile(ctx, req.Msg.Id)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.GetLibraryProfileResponse{Id: req.Msg.Id, Attributes: profileToProto(vals)}), nil
}

func (h *librariesHandler) SetLibraryProfile(ctx context.Context, req *connect.Request[trellisv1.SetLibraryProfileRequest]) (*connect.Response[trellisv1.SetLibraryProfileResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	ch, err := h.svc.Testbed.SetLibraryProfile(ctx, p, req.Msg.Id, req.Msg.Set, req.Msg.Clear)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.SetLibraryProfileResponse{Changes: changesToProto(ch)}), nil
}

func (h *librariesHandler) RemoveLibrary(ctx context.Context, req *connect.Request[trellisv1.RemoveLibraryRequest]) (*connect.Response[trellisv1.RemoveLibraryResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if err := h.svc.Testbed.RemoveLibrary(ctx, p, req.Msg.Id); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.RemoveLibraryResponse{}), nil
}

type resourcesHandler struct{ svc *service.Service }

func resourceToProto(r *store.BoundResource) *trellisv1.Resource {
	return &trellisv1.Resource{
		Name: r.Name, Kind: string(r.Kind), Provider: r.Provider, Attributes: r.Attributes,
		State: string(r.State), Realization: r.Realization, CreatedAt: ts(r.CreatedAt),
	}
}

func (h *resourcesHandler) RegisterResource(ctx context.Context, req *connect.Request[trellisv1.RegisterResourceRequest]) (*connect.Response[trellisv1.RegisterResourceResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	r, err := h.svc.Testbed.RegisterResource(ctx, p, &domain.Resource{Name: req.Msg.Name, Kind: domain.ResourceKind(req.Msg.Kind), Provider: req.Msg.Provider, Attributes: req.Msg.Attributes})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.RegisterResourceResponse{Resource: resourceToProto(r)}), nil
}

func (h *resourcesHandler) GetResource(ctx context.Context, req *connect.Request[trellisv1.GetResourceRequest]) (*connect.Response[trellisv1.GetResourceResponse], error) {
	r, err := h.svc.Testbed.GetResource(ctx, req.Msg.Name)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.GetResourceResponse{Resource: resourceToProto(r)}), nil
}

func (h *resourcesHandler) ListResources(ctx context.Context, req *connect.Request[trellisv1.ListResourcesRequest]) (*connect.Response[trellisv1.ListResourcesResponse], error) {
	rs, next, err := h.svc.Testbed.ListResources(ctx, service.ResourceQuery{
		Filters: req.Msg.Filters, Kind: req.Msg.Kind, Provider: req.Msg.Provider, State: req.Msg.State,
		PageSize: req.Msg.PageSize, PageToken: req.Msg.PageToken,
	})
	if err != nil {
		return nil, err
	}
	resp := &trellisv1.ListResourcesResponse{NextPageToken: next}
	for _, r := range rs {
		resp.Resources = append(resp.Resources, resourceToProto(r))
	}
	return connect.NewResponse(resp), nil
}

func (h *resourcesHandler) SetResourceState(ctx context.Context, req *connect.Request[trellisv1.SetResourceStateRequest]) (*connect.Response[trellisv1.SetResourceStateResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	r, err := h.svc.Testbed.SetResourceState(ctx, p, req.Msg.Name, req.Msg.State)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.SetResourceStateResponse{Resource: resourceToProto(r)}), nil
}

func (h *resourcesHandler) RemoveResource(ctx context.Context, req *connect.Request[trellisv1.RemoveResourceRequest]) (*connect.Response[trellisv1.RemoveResourceResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if err := h.svc.Testbed.RemoveResource(ctx, p, req.Msg.Name); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.RemoveResourceResponse{}), nil
}

type realizationsHandler struct{ svc *service.Service }

func realizationToProto(v *service.RealizationView) *trellisv1.Realization {
	out := &trellisv1.Realization{
		Id: v.ID, Experiment: v.Experiment, Project: v.Project, Owner: v.Owner, State: string(v.State),
		LeaseExpiresAt: ts(v.LeaseExpires), CreatedAt: ts(v.CreatedAt), ReleasedAt: ts(v.ReleasedAt),
		Grants: grantsToProto(v.Grants),
	}
	for _, b := range v.Bindings {
		out.Bindings = append(out.Bindings, &trellisv1.Binding{Element: b.Element, Resource: b.Resource})
	}
	return out
}

func realizationsToProto(vs []*service.RealizationView) []*trellisv1.Realization {
	out := make([]*trellisv1.Realization, 0, len(vs))
	for _, v := range vs {
		out = append(out, realizationToProto(v))
	}
	return out
}

func (h *realizationsHandler) Realize(ctx context.Context, req *connect.Request[trellisv1.RealizeRequest]) (*connect.Response[trellisv1.RealizeResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	v, err := h.svc.Testbed.Realize(ctx, p, req.Msg.Experiment, req.Msg.Project, req.Msg.Lease.AsDuration())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.RealizeResponse{Realization: realizationToProto(v)}), nil
}

func (h *realizationsHandler) GetRealization(ctx context.Context, req *connect.Request[trellisv1.GetRealizationRequest]) (*connect.Response[trellisv1.GetRealizationResponse], error) {
	v, err := h.svc.Testbed.GetRealization(ctx, req.Msg.Id)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.GetRealizationResponse{Realization: realizationToProto(v)}), nil
}

func (h *realizationsHandler) ListRealizations(ctx context.Context, req *connect.Request[trellisv1.ListRealizationsRequest]) (*connect.Response[trellisv1.ListRealizationsResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	vs, next, err := h.svc.Testbed.ListRealizations(ctx, p, false, req.Msg.IncludeEnded, req.Msg.PageSize, req.Msg.PageToken)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.ListRealizationsResponse{Realizations: realizationsToProto(vs), NextPageToken: next}), nil
}

func (h *realizationsHandler) ListAllRealizations(ctx context.Context, req *connect.Request[trellisv1.ListAllRealizationsRequest]) (*connect.Response[trellisv1.ListAllRealizationsResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	vs, next, err := h.svc.Testbed.ListRealizations(ctx, p, true, req.Msg.IncludeEnded, req.Msg.PageSize, req.Msg.PageToken)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.ListAllRealizationsResponse{Realizations: realizationsToProto(vs), NextPageToken: next}), nil
}

func (h *realizationsHandler) Renew(ctx context.Context, req *connect.Request[trellisv1.RenewRequest]) (*connect.Response[trellisv1.RenewResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	v, err := h.svc.Testbed.Renew(ctx, p, req.Msg.Id, req.Msg.Lease.AsDuration())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.RenewResponse{Realization: realizationToProto(v)}), nil
}

func (h *realizationsHandler) ChangeBindings(ctx context.Context, req *connect.Request[trellisv1.ChangeBindingsRequest]) (*connect.Response[trellisv1.ChangeBindingsResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	bs := make([]domain.Binding, 0, len(req.Msg.Bindings))
	for _, b := range req.Msg.Bindings {
		bs = append(bs, domain.Binding{Element: b.Element, Resource: b.Resource})
	}
	v, err := h.svc.Testbed.ChangeBindings(ctx, p, req.Msg.Id, bs)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.ChangeBindingsResponse{Realization: realizationToProto(v)}), nil
}

func (h *realizationsHandler) ChangeAccess(ctx context.Context, req *connect.Request[trellisv1.RealizationsChangeAccessRequest]) (*connect.Response[trellisv1.RealizationsChangeAccessResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	gs, err := h.svc.Testbed.ChangeRealizationAccess(ctx, p, req.Msg.Id, req.Msg.Circle, req.Msg.Rights)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.RealizationsChangeAccessResponse{Grants: grantsToProto(gs)}), nil
}

func (h *realizationsHandler) Release(ctx context.Context, req *connect.Request[trellisv1.ReleaseRequest]) (*connect.Response[trellisv1.ReleaseResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	v, err := h.svc.Testbed.Release(ctx, p, req.Msg.Id)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.ReleaseResponse{Realization: realizationToProto(v)}), nil
}

func (h *realizationsHandler) ForceRelease(ctx context.Context, req *connect.Request[trellisv1.ForceReleaseRequest]) (*connect.Response[trellisv1.ForceReleaseResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	v, err := h.svc.Testbed.ForceRelease(ctx, p, req.Msg.Id, req.Msg.Reason)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.ForceReleaseResponse{Realization: realizationToProto(v)}), nil
}
