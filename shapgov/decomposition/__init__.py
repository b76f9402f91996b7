"""Stage 1, decompose: a fitted model becomes a blueprint of modeling vertices, an affine
combination rule and a link (:func:`shapgov.decomposition.decompose.decompose`)."""
