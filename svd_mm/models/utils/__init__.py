from .acs_conv import ACSConv3d
from .baseline_importers import (BASELINE_CONVERTERS, convert_acs_resnet,
                                 convert_genesis, convert_kinetics_3d_resnet,
                                 convert_med3d, format_report,
                                 inflate_2d_resnet)
from .connected_components import largest_connected_component
from .weight_transfer import (adapt_first_conv_weight, load_backbone_weights,
                              read_state_dict, select_prefix)

__all__ = [
    'largest_connected_component', 'adapt_first_conv_weight',
    'load_backbone_weights', 'read_state_dict', 'select_prefix', 'ACSConv3d',
    'BASELINE_CONVERTERS',
    'convert_acs_resnet', 'convert_genesis', 'convert_kinetics_3d_resnet',
    'convert_med3d', 'format_report', 'inflate_2d_resnet'
]
