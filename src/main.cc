// sluice: one binary for every role. All logic lives in the libraries under src/.
#include "cli/commands.h"

int main(int argc, char** argv) { return sluice::cli::Main(argc, argv); }
