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
			Size: a.Size, Summary: a.Summary, UpdatedAt: ts(a.UpdatedAt), DerivedFrom: a.DerivedFrom,
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
	v, err := h.svc.Testbed.CreateExperiment(ctx, caller(ctx), req.Msg.Id, req.Msg.Description, req.Msg.Profile, aspectInputs(req.Msg.Aspects))
	return reply(v, err, func(v *service.ExperimentView) *trellisv1.CreateExperimentResponse {
		return &trellisv1.CreateExperimentResponse{Experiment: experimentToProto(v)}
	})
}

func (h *experimentsHandler) GetExperiment(ctx context.Context, req *connect.Request[trellisv1.GetExperimentRequest]) (*connect.Response[trellisv1.GetExperimentResponse], error) {
	v, err := h.svc.Testbed.GetExperiment(ctx, caller(ctx), req.Msg.Id, req.Msg.IncludeContent)
	return reply(v, err, func(v *service.ExperimentView) *trellisv1.GetExperimentResponse {
		return &trellisv1.GetExperimentResponse{Experiment: experimentToProto(v)}
	})
}

func (h *experimentsHandler) ListExperiments(ctx context.Context, req *connect.Request[trellisv1.ListExperimentsRequest]) (*connect.Response[trellisv1.ListExperimentsResponse], error) {
	vs, next, err := h.svc.Testbed.ListExperiments(ctx, caller(ctx), service.ExperimentQuery{Owner: req.Msg.Owner, Text: req.Msg.Text, PageSize: req.Msg.PageSize, PageToken: req.Msg.PageToken})
	return reply(vs, err, func(vs []*service.ExperimentView) *trellisv1.ListExperimentsResponse {
		resp := &trellisv1.ListExperimentsResponse{NextPageToken: next}
		for _, v := range vs {
			resp.Experiments = append(resp.Experiments, experimentToProto(v))
		}
		return resp
	})
}

func (h *experimentsHandler) AddAspects(ctx context.Context, req *connect.Request[trellisv1.AddAspectsRequest]) (*connect.Response[trellisv1.AddAspectsResponse], error) {
	v, err := h.svc.Testbed.AddAspects(ctx, caller(ctx), req.Msg.Id, aspectInputs(req.Msg.Aspects))
	return reply(v, err, func(v *service.ExperimentView) *trellisv1.AddAspectsResponse {
		return &trellisv1.AddAspectsResponse{Experiment: experimentToProto(v)}
	})
}

func aspectChanges(in []*trellisv1.AspectChange) []service.AspectInput {
	out := make([]service.AspectInput, 0, len(in))
	for _, c := range in {
		out = append(out, service.AspectInput{Type: c.Type, Name: c.Name, Revision: c.Revision, Content: c.Content})
	}
	return out
}

func (h *experimentsHandler) ChangeAspects(ctx context.Context, req *connect.Request[trellisv1.ChangeAspectsRequest]) (*connect.Response[trellisv1.ChangeAspectsResponse], error) {
	v, err := h.svc.Testbed.ChangeAspects(ctx, caller(ctx), req.Msg.Id, aspectChanges(req.Msg.Changes))
	return reply(v, err, func(v *service.ExperimentView) *trellisv1.ChangeAspectsResponse {
		return &trellisv1.ChangeAspectsResponse{Experiment: experimentToProto(v)}
	})
}

func aspectRefs(in []*trellisv1.AspectRef) []service.AspectInput {
	out := make([]service.AspectInput, 0, len(in))
	for _, a := range in {
		out = append(out, service.AspectInput{Type: a.Type, Name: a.Name})
	}
	return out
}

func (h *experimentsHandler) RemoveAspects(ctx context.Context, req *connect.Request[trellisv1.RemoveAspectsRequest]) (*connect.Response[trellisv1.RemoveAspectsResponse], error) {
	v, err := h.svc.Testbed.RemoveAspects(ctx, caller(ctx), req.Msg.Id, aspectRefs(req.Msg.Aspects))
	return reply(v, err, func(v *service.ExperimentView) *trellisv1.RemoveAspectsResponse {
		return &trellisv1.RemoveAspectsResponse{Experiment: experimentToProto(v)}
	})
}

func (h *experimentsHandler) ChangeAccess(ctx context.Context, req *connect.Request[trellisv1.ExperimentsChangeAccessRequest]) (*connect.Response[trellisv1.ExperimentsChangeAccessResponse], error) {
	gs, err := h.svc.Testbed.ChangeExperimentAccess(ctx, caller(ctx), req.Msg.Id, req.Msg.Circle, req.Msg.Rights)
	return reply(gs, err, func(gs []*domain.Grant) *trellisv1.ExperimentsChangeAccessResponse {
		return &trellisv1.ExperimentsChangeAccessResponse{Grants: grantsToProto(gs)}
	})
}

func (h *experimentsHandler) GetProfileDescription(ctx context.Context, _ *connect.Request[trellisv1.ExperimentsGetProfileDescriptionRequest]) (*connect.Response[trellisv1.ExperimentsGetProfileDescriptionResponse], error) {
	d, err := h.svc.Testbed.GetExperimentProfileDescription(ctx, caller(ctx))
	return reply(d, err, func(d *domain.ProfileDescription) *trellisv1.ExperimentsGetProfileDescriptionResponse {
		return &trellisv1.ExperimentsGetProfileDescriptionResponse{Attributes: descriptionToProto(d)}
	})
}

func (h *experimentsHandler) GetExperimentProfile(ctx context.Context, req *connect.Request[trellisv1.GetExperimentProfileRequest]) (*connect.Response[trellisv1.GetExperimentProfileResponse], error) {
	vals, err := h.svc.Testbed.GetExperimentProfile(ctx, caller(ctx), req.Msg.Id)
	return reply(vals, err, func(vals []domain.ProfileValue) *trellisv1.GetExperimentProfileResponse {
		return &trellisv1.GetExperimentProfileResponse{Id: req.Msg.Id, Attributes: profileToProto(vals)}
	})
}

func (h *experimentsHandler) SetExperimentProfile(ctx context.Context, req *connect.Request[trellisv1.SetExperimentProfileRequest]) (*connect.Response[trellisv1.SetExperimentProfileResponse], error) {
	ch, err := h.svc.Testbed.SetExperimentProfile(ctx, caller(ctx), req.Msg.Id, req.Msg.Set, req.Msg.Clear)
	return reply(ch, err, func(ch []domain.AttributeChange) *trellisv1.SetExperimentProfileResponse {
		return &trellisv1.SetExperimentProfileResponse{Changes: changesToProto(ch)}
	})
}

func (h *experimentsHandler) RemoveExperiment(ctx context.Context, req *connect.Request[trellisv1.RemoveExperimentRequest]) (*connect.Response[trellisv1.RemoveExperimentResponse], error) {
	return done[trellisv1.RemoveExperimentResponse](h.svc.Testbed.RemoveExperiment(ctx, caller(ctx), req.Msg.Id))
}

func (h *experimentsHandler) SetOwner(ctx context.Context, req *connect.Request[trellisv1.ExperimentsSetOwnerRequest]) (*connect.Response[trellisv1.ExperimentsSetOwnerResponse], error) {
	id, err := h.svc.Testbed.SetExperimentOwner(ctx, caller(ctx), req.Msg.Id, req.Msg.Uid)
	return reply(id, err, func(id string) *trellisv1.ExperimentsSetOwnerResponse {
		return &trellisv1.ExperimentsSetOwnerResponse{RequestId: id}
	})
}

func (h *experimentsHandler) ExportExperiment(ctx context.Context, req *connect.Request[trellisv1.ExportExperimentRequest]) (*connect.Response[trellisv1.ExportExperimentResponse], error) {
	doc, err := h.svc.Testbed.ExportExperiment(ctx, caller(ctx), req.Msg.Id)
	return reply(doc, err, func(doc []byte) *trellisv1.ExportExperimentResponse {
		return &trellisv1.ExportExperimentResponse{Document: doc}
	})
}

func (h *experimentsHandler) ImportExperiment(ctx context.Context, req *connect.Request[trellisv1.ImportExperimentRequest]) (*connect.Response[trellisv1.ImportExperimentResponse], error) {
	v, err := h.svc.Testbed.ImportExperiment(ctx, caller(ctx), req.Msg.Document, req.Msg.Id)
	return reply(v, err, func(v *service.ExperimentView) *trellisv1.ImportExperimentResponse {
		return &trellisv1.ImportExperimentResponse{Experiment: experimentToProto(v)}
	})
}

type librariesHandler struct{ svc *service.Service }

func libraryToProto(v *service.LibraryView) *trellisv1.Library {
	return &trellisv1.Library{
		Id: v.ID, Owner: v.Owner, Creator: v.Creator, Description: v.Description,
		Experiments: v.Experiments, Grants: grantsToProto(v.Grants), CreatedAt: ts(v.CreatedAt),
	}
}

func (h *librariesHandler) CreateLibrary(ctx context.Context, req *connect.Request[trellisv1.CreateLibraryRequest]) (*connect.Response[trellisv1.CreateLibraryResponse], error) {
	v, err := h.svc.Testbed.CreateLibrary(ctx, caller(ctx), req.Msg.Id, req.Msg.Description, req.Msg.Profile)
	return reply(v, err, func(v *service.LibraryView) *trellisv1.CreateLibraryResponse {
		return &trellisv1.CreateLibraryResponse{Library: libraryToProto(v)}
	})
}

func (h *librariesHandler) GetLibrary(ctx context.Context, req *connect.Request[trellisv1.GetLibraryRequest]) (*connect.Response[trellisv1.GetLibraryResponse], error) {
	v, err := h.svc.Testbed.GetLibrary(ctx, caller(ctx), req.Msg.Id)
	return reply(v, err, func(v *service.LibraryView) *trellisv1.GetLibraryResponse {
		return &trellisv1.GetLibraryResponse{Library: libraryToProto(v)}
	})
}

func (h *librariesHandler) ListLibraries(ctx context.Context, req *connect.Request[trellisv1.ListLibrariesRequest]) (*connect.Response[trellisv1.ListLibrariesResponse], error) {
	vs, next, err := h.svc.Testbed.ListLibraries(ctx, caller(ctx), req.Msg.Owner, req.Msg.Text, req.Msg.PageSize, req.Msg.PageToken)
	return reply(vs, err, func(vs []*service.LibraryView) *trellisv1.ListLibrariesResponse {
		resp := &trellisv1.ListLibrariesResponse{NextPageToken: next}
		for _, v := range vs {
			resp.Libraries = append(resp.Libraries, libraryToProto(v))
		}
		return resp
	})
}

func (h *librariesHandler) AddExperiments(ctx context.Context, req *connect.Request[trellisv1.AddExperimentsRequest]) (*connect.Response[trellisv1.AddExperimentsResponse], error) {
	v, err := h.svc.Testbed.AddLibraryExperiments(ctx, caller(ctx), req.Msg.Id, req.Msg.Experiments)
	return reply(v, err, func(v *service.LibraryView) *trellisv1.AddExperimentsResponse {
		return &trellisv1.AddExperimentsResponse{Library: libraryToProto(v)}
	})
}

func (h *librariesHandler) RemoveExperiments(ctx context.Context, req *connect.Request[trellisv1.RemoveExperimentsRequest]) (*connect.Response[trellisv1.RemoveExperimentsResponse], error) {
	v, err := h.svc.Testbed.RemoveLibraryExperiments(ctx, caller(ctx), req.Msg.Id, req.Msg.Experiments)
	return reply(v, err, func(v *service.LibraryView) *trellisv1.RemoveExperimentsResponse {
		return &trellisv1.RemoveExperimentsResponse{Library: libraryToProto(v)}
	})
}

func (h *librariesHandler) ChangeAccess(ctx context.Context, req *connect.Request[trellisv1.LibrariesChangeAccessRequest]) (*connect.Response[trellisv1.LibrariesChangeAccessResponse], error) {
	gs, err := h.svc.Testbed.ChangeLibraryAccess(ctx, caller(ctx), req.Msg.Id, req.Msg.Circle, req.Msg.Rights)
	return reply(gs, err, func(gs []*domain.Grant) *trellisv1.LibrariesChangeAccessResponse {
		return &trellisv1.LibrariesChangeAccessResponse{Grants: grantsToProto(gs)}
	})
}

func (h *librariesHandler) GetProfileDescription(ctx context.Context, _ *connect.Request[trellisv1.LibrariesGetProfileDescriptionRequest]) (*connect.Response[trellisv1.LibrariesGetProfileDescriptionResponse], error) {
	d, err := h.svc.Testbed.GetLibraryProfileDescription(ctx, caller(ctx))
	return reply(d, err, func(d *domain.ProfileDescription) *trellisv1.LibrariesGetProfileDescriptionResponse {
		return &trellisv1.LibrariesGetProfileDescriptionResponse{Attributes: descriptionToProto(d)}
	})
}

func (h *librariesHandler) GetLibraryProfile(ctx context.Context, req *connect.Request[trellisv1.GetLibraryProfileRequest]) (*connect.Response[trellisv1.GetLibraryProfileResponse], error) {
	vals, err := h.svc.Testbed.GetLibraryProfile(ctx, caller(ctx), req.Msg.Id)
	return reply(vals, err, func(vals []domain.ProfileValue) *trellisv1.GetLibraryProfileResponse {
		return &trellisv1.GetLibraryProfileResponse{Id: req.Msg.Id, Attributes: profileToProto(vals)}
	})
}

func (h *librariesHandler) SetLibraryProfile(ctx context.Context, req *connect.Request[trellisv1.SetLibraryProfileRequest]) (*connect.Response[trellisv1.SetLibraryProfileResponse], error) {
	ch, err := h.svc.Testbed.SetLibraryProfile(ctx, caller(ctx), req.Msg.Id, req.Msg.Set, req.Msg.Clear)
	return reply(ch, err, func(ch []domain.AttributeChange) *trellisv1.SetLibraryProfileResponse {
		return &trellisv1.SetLibraryProfileResponse{Changes: changesToProto(ch)}
	})
}

func (h *librariesHandler) RemoveLibrary(ctx context.Context, req *connect.Request[trellisv1.RemoveLibraryRequest]) (*connect.Response[trellisv1.RemoveLibraryResponse], error) {
	return done[trellisv1.RemoveLibraryResponse](h.svc.Testbed.RemoveLibrary(ctx, caller(ctx), req.Msg.Id))
}

func (h *librariesHandler) SetOwner(ctx context.Context, req *connect.Request[trellisv1.LibrariesSetOwnerRequest]) (*connect.Response[trellisv1.LibrariesSetOwnerResponse], error) {
	id, err := h.svc.Testbed.SetLibraryOwner(ctx, caller(ctx), req.Msg.Id, req.Msg.Uid)
	return reply(id, err, func(id string) *trellisv1.LibrariesSetOwnerResponse {
		return &trellisv1.LibrariesSetOwnerResponse{RequestId: id}
	})
}

func (h *librariesHandler) ListLibraryExperiments(ctx context.Context, req *connect.Request[trellisv1.ListLibraryExperimentsRequest]) (*connect.Response[trellisv1.ListLibraryExperimentsResponse], error) {
	vs, next, err := h.svc.Testbed.ListLibraryExperiments(ctx, caller(ctx), req.Msg.Id, req.Msg.PageSize, req.Msg.PageToken)
	return reply(vs, err, func(vs []*service.ExperimentView) *trellisv1.ListLibraryExperimentsResponse {
		resp := &trellisv1.ListLibraryExperimentsResponse{NextPageToken: next}
		for _, v := range vs {
			resp.Experiments = append(resp.Experiments, experimentToProto(v))
		}
		return resp
	})
}

type resourcesHandler struct{ svc *service.Service }

func resourceToProto(r *store.BoundResource) *trellisv1.Resource {
	return &trellisv1.Resource{
		Name: r.Name, Kind: string(r.Kind), Provider: r.Provider, Attributes: r.Attributes,
		State: string(r.State), Realization: r.Realization, CreatedAt: ts(r.CreatedAt),
	}
}

func (h *resourcesHandler) RegisterResource(ctx context.Context, req *connect.Request[trellisv1.RegisterResourceRequest]) (*connect.Response[trellisv1.RegisterResourceResponse], error) {
	r, err := h.svc.Testbed.RegisterResource(ctx, caller(ctx), &domain.Resource{Name: req.Msg.Name, Kind: domain.ResourceKind(req.Msg.Kind), Provider: req.Msg.Provider, Attributes: req.Msg.Attributes})
	return reply(r, err, func(r *store.BoundResource) *trellisv1.RegisterResourceResponse {
		return &trellisv1.RegisterResourceResponse{Resource: resourceToProto(r)}
	})
}

func (h *resourcesHandler) GetResource(ctx context.Context, req *connect.Request[trellisv1.GetResourceRequest]) (*connect.Response[trellisv1.GetResourceResponse], error) {
	r, err := h.svc.Testbed.GetResource(ctx, caller(ctx), req.Msg.Name)
	return reply(r, err, func(r *store.BoundResource) *trellisv1.GetResourceResponse {
		return &trellisv1.GetResourceResponse{Resource: resourceToProto(r)}
	})
}

func (h *resourcesHandler) ListResources(ctx context.Context, req *connect.Request[trellisv1.ListResourcesRequest]) (*connect.Response[trellisv1.ListResourcesResponse], error) {
	rs, next, err := h.svc.Testbed.ListResources(ctx, caller(ctx), service.ResourceQuery{
		Filters: req.Msg.Filters, Kind: req.Msg.Kind, Provider: req.Msg.Provider, State: req.Msg.State,
		PageSize: req.Msg.PageSize, PageToken: req.Msg.PageToken,
	})
	return reply(rs, err, func(rs []*store.BoundResource) *trellisv1.ListResourcesResponse {
		resp := &trellisv1.ListResourcesResponse{NextPageToken: next}
		for _, r := range rs {
			resp.Resources = append(resp.Resources, resourceToProto(r))
		}
		return resp
	})
}

func (h *resourcesHandler) SetResourceState(ctx context.Context, req *connect.Request[trellisv1.SetResourceStateRequest]) (*connect.Response[trellisv1.SetResourceStateResponse], error) {
	r, err := h.svc.Testbed.SetResourceState(ctx, caller(ctx), req.Msg.Name, req.Msg.State)
	return reply(r, err, func(r *store.BoundResource) *trellisv1.SetResourceStateResponse {
		return &trellisv1.SetResourceStateResponse{Resource: resourceToProto(r)}
	})
}

func (h *resourcesHandler) RemoveResource(ctx context.Context, req *connect.Request[trellisv1.RemoveResourceRequest]) (*connect.Response[trellisv1.RemoveResourceResponse], error) {
	return done[trellisv1.RemoveResourceResponse](h.svc.Testbed.RemoveResource(ctx, caller(ctx), req.Msg.Name))
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
	out.Materialization = materializationToProto(v.Materialization)
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
	v, err := h.svc.Testbed.Realize(ctx, caller(ctx), req.Msg.Experiment, req.Msg.Project, req.Msg.Lease.AsDuration())
	return reply(v, err, func(v *service.RealizationView) *trellisv1.RealizeResponse {
		return &trellisv1.RealizeResponse{Realization: realizationToProto(v)}
	})
}

func (h *realizationsHandler) GetRealization(ctx context.Context, req *connect.Request[trellisv1.GetRealizationRequest]) (*connect.Response[trellisv1.GetRealizationResponse], error) {
	v, err := h.svc.Testbed.GetRealization(ctx, caller(ctx), req.Msg.Id)
	return reply(v, err, func(v *service.RealizationView) *trellisv1.GetRealizationResponse {
		return &trellisv1.GetRealizationResponse{Realization: realizationToProto(v)}
	})
}

func (h *realizationsHandler) ListRealizations(ctx context.Context, req *connect.Request[trellisv1.ListRealizationsRequest]) (*connect.Response[trellisv1.ListRealizationsResponse], error) {
	vs, next, err := h.svc.Testbed.ListRealizations(ctx, caller(ctx), req.Msg.IncludeEnded, req.Msg.PageSize, req.Msg.PageToken)
	return reply(vs, err, func(vs []*service.RealizationView) *trellisv1.ListRealizationsResponse {
		return &trellisv1.ListRealizationsResponse{Realizations: realizationsToProto(vs), NextPageToken: next}
	})
}

func (h *realizationsHandler) ListAllRealizations(ctx context.Context, req *connect.Request[trellisv1.ListAllRealizationsRequest]) (*connect.Response[trellisv1.ListAllRealizationsResponse], error) {
	vs, next, err := h.svc.Testbed.ListAllRealizations(ctx, caller(ctx), req.Msg.IncludeEnded, req.Msg.PageSize, req.Msg.PageToken)
	return reply(vs, err, func(vs []*service.RealizationView) *trellisv1.ListAllRealizationsResponse {
		return &trellisv1.ListAllRealizationsResponse{Realizations: realizationsToProto(vs), NextPageToken: next}
	})
}

func (h *realizationsHandler) Renew(ctx context.Context, req *connect.Request[trellisv1.RenewRequest]) (*connect.Response[trellisv1.RenewResponse], error) {
	v, err := h.svc.Testbed.Renew(ctx, caller(ctx), req.Msg.Id, req.Msg.Lease.AsDuration())
	return reply(v, err, func(v *service.RealizationView) *trellisv1.RenewResponse {
		return &trellisv1.RenewResponse{Realization: realizationToProto(v)}
	})
}

func bindingInputs(in []*trellisv1.Binding) []domain.Binding {
	out := make([]domain.Binding, 0, len(in))
	for _, b := range in {
		out = append(out, domain.Binding{Element: b.Element, Resource: b.Resource})
	}
	return out
}

func (h *realizationsHandler) ChangeBindings(ctx context.Context, req *connect.Request[trellisv1.ChangeBindingsRequest]) (*connect.Response[trellisv1.ChangeBindingsResponse], error) {
	v, err := h.svc.Testbed.ChangeBindings(ctx, caller(ctx), req.Msg.Id, bindingInputs(req.Msg.Bindings))
	return reply(v, err, func(v *service.RealizationView) *trellisv1.ChangeBindingsResponse {
		return &trellisv1.ChangeBindingsResponse{Realization: realizationToProto(v)}
	})
}

func (h *realizationsHandler) ChangeAccess(ctx context.Context, req *connect.Request[trellisv1.RealizationsChangeAccessRequest]) (*connect.Response[trellisv1.RealizationsChangeAccessResponse], error) {
	gs, err := h.svc.Testbed.ChangeRealizationAccess(ctx, caller(ctx), req.Msg.Id, req.Msg.Circle, req.Msg.Rights)
	return reply(gs, err, func(gs []*domain.Grant) *trellisv1.RealizationsChangeAccessResponse {
		return &trellisv1.RealizationsChangeAccessResponse{Grants: grantsToProto(gs)}
	})
}

func (h *realizationsHandler) Release(ctx context.Context, req *connect.Request[trellisv1.ReleaseRequest]) (*connect.Response[trellisv1.ReleaseResponse], error) {
	v, err := h.svc.Testbed.Release(ctx, caller(ctx), req.Msg.Id)
	return reply(v, err, func(v *service.RealizationView) *trellisv1.ReleaseResponse {
		return &trellisv1.ReleaseResponse{Realization: realizationToProto(v)}
	})
}

func (h *realizationsHandler) ForceRelease(ctx context.Context, req *connect.Request[trellisv1.ForceReleaseRequest]) (*connect.Response[trellisv1.ForceReleaseResponse], error) {
	v, err := h.svc.Testbed.ForceRelease(ctx, caller(ctx), req.Msg.Id, req.Msg.Reason)
	return reply(v, err, func(v *service.RealizationView) *trellisv1.ForceReleaseResponse {
		return &trellisv1.ForceReleaseResponse{Realization: realizationToProto(v)}
	})
}
