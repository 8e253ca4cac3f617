"""The environment every engine subprocess starts with, whatever the check: offline, and the card's NPU settings."""

# vLLM-Ascend, as in the model card's adaptation runs: the task queue and expandable segments make NPU memory
# behave, and devices are selected for both torch_npu and vLLM-Ascend.
ASCEND_ENV = {"TASK_QUEUE_ENABLE": "1", "PYTORCH_NPU_ALLOC_CONF": "expandable_segments:True"}
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
