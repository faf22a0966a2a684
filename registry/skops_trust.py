"""Which types a skops file may name: the exact trust list mreg loads scikit-learn models with.

Trust: ``joblib`` and ``pickle`` run code when loaded, and ``torchscript`` and
Keras files carry model code too; mreg loads them because an artifact only
reaches a served revision through a reviewed commit and its md5 is checked
before loading. ``skops`` is the safer default: it builds only the types it
is told to trust. skops itself trusts scikit-learn's estimators, NumPy
arrays and dtypes and Python's plain containers; of what it reports beyond
that (``skops.io.get_untrusted_types``), mreg trusts only the exact
scikit-learn, NumPy and SciPy *types* in SKOPS_TRUSTED_TYPES (fitted trees,
neighbour indexes, distance metrics, losses, optimisers, kernels, sparse
matrices). Never a function or a builtin: a FunctionTransformer holding
``functools.partial(builtins.eval, ...)`` would run code on predict. A model
that needs anything else is refused with the names; store it as joblib,
which says plainly that the file is trusted.
"""

from __future__ import annotations


def _each(module: str, *names: str) -> list[str]:
    return [f"{module}.{name}" for name in names]


_METRICS = [
    "BrayCurtis",
    "Canberra",
    "Chebyshev",
    "Dice",
    "Euclidean",
    "Hamming",
    "Haversine",
    "Jaccard",
    "Kulsinski",
    "Mahalanobis",
    "Manhattan",
    "Matching",
    "Minkowski",
    "RogersTanimoto",
    "RussellRao",
    "SEuclidean",
    "SokalMichener",
    "SokalSneath",
]

# The exact types, beyond skops' own defaults, that a skops file may name (see the
# module docstring). Each is a class of scikit-learn, NumPy or SciPy holding fitted
# state; no function, no builtin, no module prefix. (PyFuncDistance is left out: it
# calls a Python function.)
SKOPS_TRUSTED_TYPES: frozenset[str] = frozenset(
    [
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.neighbors._ball_tree.BallTree",
        *(f"sklearn.metrics._dist_metrics.{m}Distance{b}" for m in _METRICS for b in (32, 64)),
        *_each("sklearn.neural_network._stochastic_optimizers", "AdamOptimizer", "SGDOptimizer"),
        *_each(
            "sklearn._loss.loss",
            "AbsoluteError",
            "ExponentialLoss",
            "HalfBinomialLoss",
            "HalfGammaLoss",
            "HalfMultinomialLoss",
            "HalfPoissonLoss",
            "HalfSquaredError",
            "HalfTweedieLoss",
            "HalfTweedieLossIdentity",
            "HuberLoss",
            "PinballLoss",
        ),
        *_each(
            "sklearn._loss.link",
            "IdentityLink",
            "Interval",
            "LogitLink",
            "LogLink",
            "MultinomialLogit",
        ),
        *_each("sklearn.calibration", "_CalibratedClassifier", "_SigmoidCalibration"),
        "sklearn.isotonic.IsotonicRegression",
        "sklearn.gaussian_process._gpc._BinaryGaussianProcessClassifierLaplace",
        *_each(
            "sklearn.gaussian_process.kernels",
            "CompoundKernel",
            "ConstantKernel",
            "DotProduct",
            "ExpSineSquared",
            "Exponentiation",
            "Hyperparameter",
            "Matern",
            "PairwiseKernel",
            "Product",
            "RationalQuadratic",
            "RBF",
            "Sum",
            "WhiteKernel",
        ),
        "sklearn.utils._bunch.Bunch",
        *_each("numpy.random", "RandomState", "Generator", "PCG64", "MT19937"),
        *_each(
            "scipy.sparse",
            "coo_array",
            "coo_matrix",
            "csc_array",
            "csc_matrix",
            "csr_array",
            "csr_matrix",
        ),
        *_each("scipy.sparse._coo", "coo_array", "coo_matrix"),
        *_each("scipy.sparse._csc", "csc_array", "csc_matrix"),
        *_each("scipy.sparse._csr", "csr_array", "csr_matrix"),
    ]
)
