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
		ExperimentCreate, ExperimentRead, ExperimentModify, ExperimentRealize, ExperimentModifyAccess, ExperimentOwn, ExperimentRemove,
		LibraryCreate, LibraryRead, LibraryAddExperiment, LibraryRemoveExperiment, LibraryModifyAccess, LibraryOwn, LibraryRemove,
		RealizationRead, RealizationModify, RealizationRelease, RealizationModifyAccess,
	}
}

// Actions on the testbed's working objects, named "experiment:OWNER:NAME",
// "library:OWNER:NAME" and "realization:ID". "own" is what ownership gives
// beyond any grant (handing the object on, its profile); "remove" is
// removing it: its owner, or the owner of the project in whose namespace
// (project:name) it was made.
const (
	ExperimentCreate       = "experiment.create"
	ExperimentRead         = "experiment.read"
	ExperimentModify       = "experiment.modify"
	ExperimentRealize      = "experiment.realize"
	ExperimentModifyAccess = "experiment.modify_access"
	ExperimentOwn          = "experiment.own"
	ExperimentRemove       = "experiment.remove"

	LibraryCreate           = "library.create"
	LibraryRead             = "library.read"
	LibraryAddExperiment    = "library.add_experiment"
	LibraryRemoveExperiment = "library.remove_experiment"
	LibraryModifyAccess     = "library.modify_access"
	LibraryOwn              = "library.own"
	LibraryRemove           = "library.remove"

	RealizationRead         = "realization.read"
	RealizationModify       = "realization.modify"
	RealizationRelease      = "realization.release"
	RealizationModifyAccess = "realization.modify_access"
)

// objectRights maps each action on a working object to the right a grant
// must carry; "own" actions carry none (only ownership allows them).
var objectRights = map[string]domain.Rights{
	ExperimentRead:          domain.RightsOf(domain.Read),
	ExperimentModify:        domain.RightsOf(domain.Modify),
	ExperimentRealize:       domain.RightsOf(domain.Realize),
	ExperimentModifyAccess:  domain.RightsOf(domain.ModifyAccess),
	ExperimentOwn:           0,
	ExperimentRemove:        0,
	LibraryRead:             domain.RightsOf(domain.Read),
	LibraryAddExperiment:    domain.RightsOf(domain.AddExperiment),
	LibraryRemoveExperiment: domain.RightsOf(domain.RemoveExperiment),
	LibraryModifyAccess:     domain.RightsOf(domain.ModifyAccess),
	LibraryOwn:              0,
	LibraryRemove:           0,
	RealizationRead:         domain.RightsOf(domain.Read),
	RealizationModify:       domain.RightsOf(domain.Modify),
	RealizationRelease:      domain.RightsOf(domain.Release),
	RealizationModifyAccess: domain.RightsOf(domain.ModifyAccess),
}
