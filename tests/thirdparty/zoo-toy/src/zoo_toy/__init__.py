"""A third-party zoo plugin: a two-layer perceptron and a squared-hinge loss."""
