package structs

// Version is drover's version; release builds set it with
// -ldflags "-X github.com/drover-sh/drover/structs.Version=...".
var Version = "0.1.0-dev"
