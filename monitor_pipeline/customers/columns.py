"""Column lists of the normalized frames (SPEC §3), in output order."""

CUSTOMER_COLUMNS = [
    "CustomerGuid", "CustomerCode", "CustomerName", "ChamberOfCommerceCode", "VatCode", "VatLiable", "Discount",
    "UsesPriceField", "ActionPriceList", "HidePrices", "LanguageCode", "CustomerManager", "Sysmodified",
    "DynamicFreeFields", "FreeFields", "CustomerClassification", "ItemFilter", "CustomerNote",
    "PaymentConditionCode", "DeliveryMethod", "Filters",
]
ADDRESS_COLUMNS = ["CustomerCode", "AddressType", "AddressLine1", "AddressLine2", "PostCode", "City", "Country",
                   "Email", "Phone", "Fax", "IsMainAddress"]
CONTACT_COLUMNS = ["CustomerCode", "FullName", "FirstName", "MiddleName", "LastName", "Email", "Phonenumber",
                   "IsMainContactPerson", "DynamicFreeFields"]
DASHBOARD_COLUMNS = ["CustomerCode", "Dashboard"]
REJECTED_COLUMNS = ["CustomerCode", "Position", "Line", "Reason"]
WARNING_COLUMNS = ["CustomerCode", "Field", "Message"]

BOOLEAN_COLUMNS = {"VatLiable", "HidePrices", "IsMainAddress", "IsMainContactPerson"}
FLOAT_COLUMNS = {"Discount"}

# customer column <- source element (lower-case) for the plain one-to-one fields
CUSTOMER_SOURCES = {
    "CustomerGuid": "customerguid", "CustomerCode": "customercode", "CustomerName": "customername",
    "ChamberOfCommerceCode": "chamberofcommercecode", "VatCode": "vatcode", "VatLiable": "isvatliable",
    "Discount": "discount", "UsesPriceField": "usesprice", "ActionPriceList": "actionpricelist",
    "HidePrices": "hideprices", "LanguageCode": "languagecode", "CustomerManager": "customermanager",
    "Sysmodified": "lastmodified", "DynamicFreeFields": "dynamicfreefields", "FreeFields": "freefields",
    "CustomerClassification": "customerclassification", "ItemFilter": "fixeditemfilter",
    "CustomerNote": "customernote", "PaymentConditionCode": "paymentcondition", "Filters": "filters",
}

ADDRESS_PREFIXES = {"invoice": "inv", "visit": "vis", "delivery": "del"}   # prefix-field order
ADDRESS_PARTS = ["address1", "address2", "postcode", "city", "countrycode", "email", "phone", "fax"]

# every customer-level source element that is read (lower-case)
CUSTOMER_FIELDS = sorted(
    set(CUSTOMER_SOURCES.values())
    | {"termsofdelivery", "deliverymethod", "customerdashboard", "countrycode", "contactemail", "contactphone",
       "contactfax", "contactfullname"}
    | {p + part for p in ADDRESS_PREFIXES for part in ADDRESS_PARTS}
)
ADDRESS_FIELDS = ["@type", "type", *ADDRESS_PARTS]
CONTACT_FIELDS = ["fullname", "firstname", "middlename", "lastname", "email", "phone", "phonenumber",
                  "dynamicfreefields"]
