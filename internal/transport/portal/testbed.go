package portal

import "net/http"

// mountTestbed registers the researcher's object pages: experiments,
// libraries, circles, resources and realizations. Each handler calls the
// service with the signed-in caller, and the service decides.
func (h *Portal) mountTestbed(handle func(pattern string, fn func(http.ResponseWriter, *http.Request))) {
	handle("GET /experiments", h.experiments)
	handle("GET /experiments/new", h.newExperimentForm)
	handle("POST /experiments/new", h.createExperiment)
	handle("GET /experiments/{id}", h.experiment)
	handle("POST /experiments/{id}/access", h.changeExperimentAccess)
	handle("POST /experiments/{id}/realize", h.realize)
	handle("GET /libraries", h.libraries)
	handle("POST /libraries", h.createLibrary)
	handle("GET /libraries/{id}", h.library)
	handle("POST /libraries/{id}/experiments", h.addLibraryExperiment)
	handle("POST /libraries/{id}/experiments/remove", h.removeLibraryExperiment)
	handle("GET /circles", h.circles)
	handle("POST /circles", h.createCircle)
	handle("GET /circles/{id}", h.circle)
	handle("POST /circles/{id}/members", h.addCircleMembers)
	handle("GET /resources", h.resources)
	handle("GET /resources/{name}", h.resource)
	handle("GET /realizations", h.realizations)
	handle("GET /realizations/{id}", h.realization)
	handle("POST /realizations/{id}/renew", h.renew)
	handle("POST /realizations/{id}/release", h.release)
}
