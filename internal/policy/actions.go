package policy

import "github.com/trellis-testbed/trellis/internal/domain"

// Actions name what a principal wants to do to an object. Objects are named
// "project:NAME" and "circle:OWNER:NAME".
const (
	ProjectRead              = "project.read"
	ProjectOwn               = "project.own"
	ProjectAddUser           = "project.add_user"
	ProjectRemoveUser        = "project.remove_user"
	ProjectCreateCircle      = "project.create_circle"
	ProjectCreateExperiment  = "project.create_experiment"
	ProjectCreateLibrary     = "project.create_library"
	ProjectRealizeExperiment = "project.realize_experiment"

	CircleCreate            = "circle.create"
	CircleRead              = "circle.read"
	CircleOwn               = "circle.own"
	CircleAddUser           = "circle.add_user"
	CircleRemoveUser        = "circle.remove_user"
	CircleRealizeExperiment = "circle.realize_experiment"
)

// projectRights maps the actions that a project membership right allows.
var projectRights = map[string]domain.Rights{
	ProjectAddUser:           domain.RightsOf(domain.AddUser),
	ProjectRemoveUser:        domain.RightsOf(domain.RemoveUser),
	ProjectCreateCircle:      domain.RightsOf(domain.CreateCircle),
	ProjectCreateExperiment:  domain.RightsOf(domain.CreateExperiment),
	ProjectCreateLibrary:     domain.RightsOf(domain.CreateLibrary),
	ProjectRealizeExperiment: domain.RightsOf(domain.RealizeExperiment),
}

var circleRights = map[string]domain.Rights{
	CircleAddUser:           domain.RightsOf(domain.AddUser),
	CircleRemoveUser:        domain.RightsOf(domain.RemoveUser),
	CircleRealizeExperiment: domain.RightsOf(domain.RealizeExperiment),
}

// Actions lists every action, for validation and documentation.
func Actions() []string {
	return []string{
		ProjectRead, ProjectOwn, ProjectAddUser, ProjectRemoveUser, ProjectCreateCircle,
		ProjectCreateExperiment, ProjectCreateLibrary, ProjectRealizeExperiment,
		CircleCreate, CircleRead, CircleOwn, CircleAddUser, CircleRemoveUser, CircleRealizeExperiment,
	}
}
