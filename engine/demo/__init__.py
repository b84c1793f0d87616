"""The toy demo model at run time: materialising the shipped compact weights (training it is tools/demo)."""
