/* behave: the differential behaviour scenarios of issue 3; see behave.h. */
#include "behave.h"

int main(int argc, char **argv) { return behave_main(argc, argv); }
