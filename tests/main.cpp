// The test runner: doctest's own main. Every tests/*.cpp adds TEST_CASEs to this executable.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
