"""PsyNeuLink's module-level keyword constants, with PsyNeuLink 0.21's values (measured).

Scripts use them as dictionary keys and argument values (``learning_components[TARGET_MECHANISM]``,
``learning_rate={DEFAULT_LEARNING_RATE: .1}``, ``set_log_conditions(VALUE)``), so the
strings must equal PsyNeuLink's.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag

ALL = "all"
ARRAY = "ARRAY"
CROSS_ENTROPY = "cross-entropy"
DEFAULT_LEARNING_RATE = "default_learning_rate"
EPOCH = "epoch"
ERROR_SIGNAL = "error_signal"
INPUT = "input"
INPUT_SHAPES = "input_shapes"
INTERNAL = "INTERNAL"
LEARNED_PROJECTIONS = "LEARNED_PROJECTIONS"
LEARNING = "LEARNING"
LEARNING_FUNCTION = "learning_function"
LEARNING_MECHANISMS = "LEARNING_MECHANISMS"
LEARNING_RATE = "learning_rate"
MATRIX = "matrix"
MINIBATCH = "minibatch"
NAME = "name"
OBJECTIVE_MECHANISM = "objective_mechanism"
PRODUCT = "product"
PROJECTIONS = "projections"
RUN = "run"
SAMPLE = "SAMPLE"
SELECTED_INPUT_ARRAY = "SELECTED_INPUT_ARRAY"
SOFT_CLAMP = "soft_clamp"
HARD_CLAMP = "hard_clamp"
PULSE_CLAMP = "pulse_clamp"
NO_CLAMP = "no_clamp"
SUM = "sum"
TARGET = "TARGET"
TARGET_MECHANISM = "TARGET_MECHANISM"
TRAINING_SET = "training set"
TRIAL = "trial"
VALUE = "value"
IDENTITY_MATRIX = "IdentityMatrix"
FULL_CONNECTIVITY_MATRIX = "FullConnectivityMatrix"
RANDOM_CONNECTIVITY_MATRIX = "RandomConnectivityMatrix"

# More of PsyNeuLink 0.21's keyword constants: the ones its test files and scripts use, measured
# (tests/pnl_reference/probe_names.py). mdfx reads few of them; they exist so that scripts written
# for PsyNeuLink import and so `from mdfx import *` brings them.
ACTIVITY_DIFFERENCE = 'ACTIVITY_DIFFERENCE'
ADD = 'add'
ADDITIVE = 'additive_param'
ADDITIVE_PARAM = 'additive_param'
AFTER = 'after'
ALLOCATION_SAMPLES = 'allocation_samples'
ARG_MAX = 'arg_max'
ARG_MAX_ABS = 'arg_max_abs'
ARG_MAX_ABS_INDICATOR = 'arg_max_abs_indicator'
ARG_MAX_INDICATOR = 'arg_max_indicator'
ARG_MIN = 'arg_min'
ARG_MIN_ABS = 'arg_min_abs'
ARG_MIN_ABS_INDICATOR = 'arg_min_abs_indicator'
ARG_MIN_INDICATOR = 'arg_min_indicator'
AUTO = 'auto'
BEFORE = 'before'
BIAS = 'bias'
BIAS_HIDDEN_TO_HIDDEN = 'BIAS HIDDEN TO HIDDEN'
BIAS_INPUT_TO_HIDDEN = 'BIAS INPUT TO HIDDEN'
BOTH = 'both'
B_HH_NAME = 'bias_hh_l0'
B_IH_NAME = 'bias_ih_l0'
COMBINE = 'combine'
COMBINED_SCORES = 'COMBINED SCORES'
COMMAND_LINE = 'COMMAND_LINE'
COMPOSITION = 'Composition'
CONCATENATE = 'concatenate'
CONCATENATE_QUERIES_NAME = 'CONCATENATE QUERIES'
CONTEXT = 'context'
CONTROL = 'control'
CONTROLLER = 'controller'
CONTROLLER_OBJECTIVE = 'CONTROLLER_OBJECTIVE'
CONTROL_PROJECTION_PARAMS = 'CONTROL_PROJECTION_PARAMS'
CONVERGENCE = 'CONVERGENCE'
CORRELATION = 'correlation'
COSINE = 'cosine'
COUNT = 'COUNT'
CPU = 'cpu'
CURRENT_ACTIVITY = 'CURRENT_ACTIVITY'
CURRENT_VALUE = 'current_value'
CYCLE = 'CYCLE'
DECISION_INDEX = 'DECISION_INDEX'
DECISION_OUTCOME = 'DECISION_OUTCOME'
DECISION_STEPS = 'DECISION_STEPS'
DECISION_TIME = 'DECISION_TIME'
DECISION_VARIABLE = 'DECISION_VARIABLE'
DECISION_VARIABLE_ARRAY = 'DECISION_VARIABLE_ARRAY'
DEFAULT = 'default'
DEFAULT_INPUT = 'default_input'
DEFAULT_VARIABLE = 'default_variable'
DETERMINISTIC = 'deterministic'
DICT = 'dict'
DIFFERENCE = 'difference'
DISABLE = 'DISABLE'
DIST_MEAN = 'mean'
DOT_PRODUCT = 'dot_product'
DRIFT_RATE = 'drift_rate'
DURATION = 'duration'
ENABLED = 'ENABLED'
END = 'end'
ENERGY = 'energy'
ENTROPY = 'entropy'
ERROR = 'ERROR'
EUCLIDEAN = 'euclidean'
EXECUTION = 'EXECUTION'
EXPONENTIAL = 'exponential'
EXTERNAL = 'EXTERNAL'
FEEDBACK = 'feedback'
FIELD_MEMORY = 'FIELD_MEMORY'
FIELD_WEIGHT = 'field_weight'
FIRST = 'first'
FULL = 'full'
FUNCTION = 'function'
FUNCTION_PARAMS = 'function_params'
GAIN = 'gain'
GATE = 'gate'
GAUSSIAN = 'gaussian'
GREATER_THAN = '>'
HETERO = 'hetero'
HIDDEN_LAYER = 'HIDDEN\nLAYER'
HIDDEN_TO_HIDDEN = 'HIDDEN TO HIDDEN'
HOLLOW_MATRIX = 'HollowMatrix'
INCLUDE = 'include'
INCREMENT = 'increment'
INITIALIZER = 'initializer'
INITIAL_VALUE = 'initial_value'
INPUTS = 'inputs'
INPUT_LABELS_DICT = 'input_labels_dict'
INPUT_PORT = 'InputPort'
INPUT_PORTS = 'input_ports'
INPUT_PORT_PARAMS = 'input_port_params'
INPUT_TO_HIDDEN = 'INPUT TO HIDDEN'
INSET = 'inset'
INTENSITY_COST_FCT_ADDITIVE_PARAM = 'intensity_cost_fct_add_param'
INTENSITY_COST_FCT_MULTIPLICATIVE_PARAM = 'intensity_cost_fct_mult_param'
INTERCEPT = 'intercept'
KAIMING_MATRIX = 'KaimingMatrix'
KEY = 'key'
KEY_INPUT = 'KEY_INPUT'
KEY_OUTPUT = 'KEY_OUTPUT'
LAST = 'last'
LAST_INTEGRATED_VALUE = 'last_integrated_value'
LEAK = 'leak'
LEARNING_OBJECTIVE = 'LEARNING_OBJECTIVE'
LEARNING_PATHWAY = 'learning_pathway'
LEARN_FIELD_WEIGHT = 'learn_field_weight'
LINEAR = 'linear'
LOSS = 'loss'
LOSS_FUNCTION = 'Loss Function'
MAPPING_PROJECTION_PARAMS = 'MAPPING_PROJECTION_PARAMS'
MAXIMIZE = 'maximize'
MAX_ABS_DIFF = 'max_abs_diff'
MAX_ABS_INDICATOR = 'MAX_ABS_INDICATOR'
MAX_ABS_ONE_HOT = 'MAX_ABS_ONE_HOT'
MAX_ABS_VAL = 'MAX_ABS_VAL'
MAX_INDICATOR = 'MAX_INDICATOR'
MAX_ONE_HOT = 'MAX_ONE_HOT'
MAX_VAL = 'MAX_VAL'
MAX_VS_AVG = 'max_vs_avg'
MAX_VS_NEXT = 'max_vs_next'
MEAN = 'MEAN'
MECHANISM = 'MECHANISM'
MEDIAN = 'MEDIAN'
METRIC = 'metric'
MINIMIZE = 'minimize'
MINUS_PHASE_ACTIVITY = 'MINUS_PHASE_ACTIVITY'
MIN_ABS_INDICATOR = 'MIN_ABS_INDICATOR'
MIN_ABS_VAL = 'MIN_ABS_VAL'
MIN_VAL = 'MIN_VAL'
MULTIPLICATIVE = 'multiplicative_param'
MULTIPLICATIVE_PARAM = 'multiplicative_param'
NESTED = 'nested'
NEWEST = 'newest'
NODE = 'NODE'
NODES = 'NODES'
NOISE = 'noise'
NON_DECISION_TIME = 'non_decision_time'
NORMED_L0_SIMILARITY = 'normed_L0_similarity'
OFFSET = 'offset'
OLDEST = 'oldest'
ONLY = 'only'
ORIGIN = 'ORIGIN'
ORTHOGONAL_MATRIX = 'OrthogonalMatrix'
OUTCOME = 'OUTCOME'
OUTPUT = 'output'
OUTPUTS = 'outputs'
OUTPUT_LABELS_DICT = 'output_labels_dict'
OUTPUT_PORTS = 'output_ports'
OUTPUT_PORT_PARAMS = 'output_ports_params'
OUTPUT_TYPE = 'output'
OVERRIDE = 'OVERRIDE'
OVERWRITE = 'overwrite'
OWNER_VALUE = 'OWNER_VALUE'
PARAMETERS = 'params'
PARAMETER_PORT_PARAMS = 'parameter_port_params'
PARAMS = 'params'
PATHWAY = 'pathway'
PLUS_PHASE_ACTIVITY = 'PLUS_PHASE_ACTIVITY'
PNL = 'psyneulink'
PORT = 'Port'
PORTS = 'PORTS'
PREVIOUS_VALUE = 'previous_value'
PROB = 'PROB'
PROBABILISTIC = 'PROB_INDICATOR'
PROBABILITY_LOWER_THRESHOLD = 'PROBABILITY_LOWER_THRESHOLD'
PROBABILITY_UPPER_THRESHOLD = 'PROBABILITY_UPPER_THRESHOLD'
PROB_INDICATOR = 'PROB_INDICATOR'
PROJECTION = 'Projection'
QUERY = 'QUERY'
RANDOM = 'random'
RANDOMIZATION_CONTROL_SIGNAL = 'RANDOMIZATION_CONTROL_SIGNAL'
RATE = 'rate'
REPORT_OUTPUT_PREF = '_report_output_pref'
RESET = 'reset'
RESPONSE_TIME = 'RESPONSE_TIME'
RESULT = 'RESULT'
RETRIEVE = 'retrieve'
RETRIEVED = 'RETRIEVED'
SAMPLE_MECHANISM = 'SAMPLE_MECHANISM'
SCALAR = 'SCALAR'
SCALE = 'scale'
SCORES = 'SCORES'
SEPARATE = 'separate'
SEQUENTIAL = 'SEQUENTIAL'
SHADOW_INPUTS = 'shadow_inputs'
SHOW_GRAPH = 'SHOW_GRAPH'
SIMPLE_HEBBIAN = 'SIMPLE_HEBBIAN'
SINGLE = 'single'
SINGLETON = 'ORIGIN AND TERMINAL'
SLOPE = 'slope'
STANDARD_DEVIATION = 'standard_deviation'
START = 'start'
STARTING_VALUE = 'starting_value'
STATE_FEATURES = 'state_features'
STORAGE_PROB = 'storage_prob'
STORE = 'store'
S_MINUS_L = 's-l'
TARGETS = 'targets'
TARGET_FIELD = 'target_field'
TERMINAL = 'TERMINAL'
TERMINATION_THRESHOLD = 'termination_threshold'
TERSE = 'terse'
TEXT = 'text'
THRESHOLD = 'threshold'
TIME = 'time'
TOLERANCE = 'tolerance'
UPDATE = 'UPDATE'
VALIDATE = 'Validate'
VALIDATION = 'VALIDATION'
VALUE_INPUT = 'VALUE_INPUT'
VALUE_OUTPUT = 'VALUE_OUTPUT'
VARIABLE = 'variable'
VARIANCE = 'variance'
VECTOR = 'VECTOR'
VERBOSE_PREF = '_verbose_pref'
WARNING = 'WARNING'
WEIGHT = 'weight'
WEIGHTED_AVG = 'all'
WEIGHTS = 'weights'
W_HH_NAME = 'weight_hh_l0'
W_IH_NAME = 'weight_ih_l0'
XAVIER_MATRIX = 'XavierMatrix'
X_0 = 'x_0'

L0 = 'difference'
MAX = 'max'
MIN = 'min'
MIN_INDICATOR = 'MIN_INDICATOR'
PER_ITEM = 'per_item'

class LogCondition(IntFlag):
    """When a logged item is recorded (PsyNeuLink's values). mdfx records per minibatch of learn()."""

    INITIALIZATION = 2
    VALIDATION = 4
    PROCESSING = 128
    LEARNING = 256
    CONTROL = 512
    SIMULATION = 1048576
    TRIAL = 2097152
    RUN = 4194304


class ReportOutput(IntEnum):
    """How much a run reports as it goes (PsyNeuLink's values); mdfx reports nothing per trial."""

    OFF = 0
    TERSE = 1
    USE_PREFS = 2
    FULL = 3


class Context:
    """PsyNeuLink's execution context, accepted where PsyNeuLink takes one.

    mdfx keeps one set of values per composition: every context names that one,
    so two contexts do not hold separate results or weights.
    """

    def __init__(self, execution_id: object = None) -> None:
        self.execution_id = execution_id

    def __repr__(self) -> str:
        return f"Context(execution_id={self.execution_id!r})"
