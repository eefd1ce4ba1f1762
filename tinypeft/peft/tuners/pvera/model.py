"""PveraModel: VeraModel under PVeRA's names (base_model.pvera_A [2r, in_max] / pvera_B [out_max, r], saved once)."""
from ..vera.model import VeraModel
from .layer import Linear, PveraLayer


class PveraModel(VeraModel):
    prefix = "pvera_lambda_"
    layer_class = PveraLayer
    linear_class = Linear
    shared_state_names = ("pvera_A", "pvera_B")
    method_name = "PVeRA"
