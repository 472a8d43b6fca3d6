package debpkg

// CompareTrees is compareTrees for the external tests.
var CompareTrees = compareTrees
