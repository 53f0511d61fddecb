package nodeevent

import "errors"

// ErrEnv: the PLH_* environment is missing a variable or holds a bad value.
var ErrEnv = errors.New("nodeevent: bad PLH_* environment")
