// mailclusterd: one node of a mailcluster. See runtime/node.hpp.
#include "runtime/node.hpp"

int main(int argc, char** argv) {
  return mc::run_node(argc, argv);
}
